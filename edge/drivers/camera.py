"""Cameras: anything that hands out frames. Drivers know nothing of what is in the frame.

`CameraSource` is what the QR scanner and the iris enrol/identify screens read from; the
simulated camera (simulators/camera.py) implements the same protocol.
"""
from __future__ import annotations

import threading
import time
from typing import Protocol

import cv2
import numpy as np

from edge.logs import get_logger

log = get_logger(__name__)


class CameraSource(Protocol):
    def read(self) -> np.ndarray | None:
        """The next frame (BGR or grayscale uint8), or None when no frame could be had.
        May block up to about one frame interval."""
        ...

    def close(self) -> None: ...


class Illuminator(Protocol):
    """The iris camera's near-infrared LEDs, one each side of the lens. Patterns: "left"
    (the left LED, dim), "right" (the right LED, bright), "off". Switching from one to the
    other is what the liveness check (edge/identity/liveness.py) watches the eye answer."""

    def set_pattern(self, pattern: str) -> None: ...


ILLUMINATOR_PATTERNS = ("left", "right", "off")


def parse_camera_spec(spec: str | int) -> str | int:
    """A settings value as OpenCV wants it: "0" -> device 0, anything else a URL or path."""
    if isinstance(spec, int):
        return spec
    text = spec.strip()
    return int(text) if text.isdigit() else text


class OpenCVCamera:
    """A V4L2 device, a network stream (rtsp://, http://) or a video file via OpenCV.

    Opens lazily and re-opens after a failure, at most once per `reopen_s`, so an unplugged
    camera costs nothing while nobody scans and recovers by itself when plugged back in.
    """

    def __init__(self, source: str | int, width: int = 1280, height: int = 720,
                 reopen_s: float = 2.0) -> None:
        self.source = parse_camera_spec(source)
        self.width, self.height = width, height
        self._reopen_s = reopen_s
        self._capture: cv2.VideoCapture | None = None
        self._next_open_at = 0.0
        self._lock = threading.Lock()

    def read(self) -> np.ndarray | None:
        with self._lock:
            capture = self._capture or self._open()
            if capture is None:
                return None
            ok, frame = capture.read()
            if ok and frame is not None:
                return frame
            self._release()
            return None

    def close(self) -> None:
        with self._lock:
            self._release()

    def _open(self) -> cv2.VideoCapture | None:
        now = time.monotonic()
        if now < self._next_open_at:
            return None
        self._next_open_at = now + self._reopen_s
        capture = cv2.VideoCapture(self.source)
        if not capture.isOpened():
            capture.release()
            log.warning("camera did not open", source=str(self.source))
            return None
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not one from a second ago
        self._capture = capture
        return capture

    def _release(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class StationCamera:
    """The camera covering the locker, as a health check: a picture, or why there is none.
    `source` may be swapped at run time (a camera re-plugged, or a simulated one)."""

    MIN_CONTRAST = 2.0  # grey-level standard deviation below which a frame is blank

    def __init__(self, source: CameraSource | None) -> None:
        self.source = source

    def problem(self) -> str | None:
        source = self.source
        if source is None:
            return "no camera configured"
        try:
            frame = source.read()
        except Exception as exc:  # noqa: BLE001 - any camera failure is an unhealthy camera
            return f"camera error: {exc}"
        if frame is None or frame.size == 0:
            return "no picture"
        if float(frame.std()) < self.MIN_CONTRAST:
            return "blank picture (covered or dark)"
        return None
