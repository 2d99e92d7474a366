"""QR decoding from camera frames, and a scanner that reads only while someone asks.

Decoder (ADR 0040): zxing-cpp on the grayscale frame, QR format only; when that finds
nothing, one retry on a contrast-equalised copy (dim phone screens, glare); optionally
OpenCV's QRCodeDetector last. Codes are handed on, never logged: they may be pickup tokens.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import zxingcpp

from edge.drivers.camera import CameraSource
from edge.logs import get_logger

log = get_logger(__name__)

CodeConsumer = Callable[[str], None]


class QrDecoder:
    """Thread-safe: one decoder may serve several scanners."""

    def __init__(self, *, enhance_retry: bool = True, opencv_fallback: bool = False,
                 second_pass: bool = True) -> None:
        self._enhance_retry = enhance_retry
        self._opencv_fallback = opencv_fallback
        self._second_pass = second_pass
        self._local = threading.local()  # OpenCV objects are not shared between threads

    def decode(self, frame: np.ndarray) -> list[str]:
        """Texts of the QR codes in the frame (each once), empty when none is readable."""
        gray = to_gray(frame)
        texts = _zxing(gray)
        if not texts and self._enhance_retry:
            texts = _zxing(self._clahe().apply(gray))
        if not texts and self._second_pass:
            texts = self.second_pass(gray)
        if not texts and self._opencv_fallback:
            texts = self._opencv(gray)
        return list(dict.fromkeys(texts))

    @staticmethod
    def second_pass(gray: np.ndarray) -> list[str]:
        """For codes the first pass misses: very small ones (modules under ~2 px) read
        after a 2x cubic upscale of the frame's centre, where a held-up phone is; strongly
        tilted ones, whose far side is compressed, read on a sharpened copy. Inverted
        codes (dark mode) zxing-cpp already tries in the first pass."""
        height, width = gray.shape
        centre = gray[height // 6: height - height // 6, width // 6: width - width // 6]
        texts = _zxing(cv2.resize(centre, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC))
        if not texts:
            blurred = cv2.GaussianBlur(gray, (0, 0), 1.5)
            texts = _zxing(cv2.addWeighted(gray, 1.8, blurred, -0.8, 0))
        return texts

    def _clahe(self) -> cv2.CLAHE:
        clahe = getattr(self._local, "clahe", None)
        if clahe is None:
            clahe = self._local.clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
        return clahe

    def _opencv(self, gray: np.ndarray) -> list[str]:
        detector = getattr(self._local, "detector", None)
        if detector is None:
            detector = self._local.detector = cv2.QRCodeDetectorAruco()
        ok, texts, _, _ = detector.detectAndDecodeMulti(gray)
        return [t for t in texts if t] if ok else []


def to_gray(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.size == 0:
        raise ValueError("expected a non-empty uint8 image")
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"expected a grayscale, BGR or BGRA image, got shape {frame.shape}")


def _zxing(gray: np.ndarray) -> list[str]:
    return [code.text for code in zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormat.QRCode)
            if code.text]


def decode_image_file(path: str | Path, decoder: QrDecoder | None = None
                      ) -> list[tuple[str, float]]:
    """(text, milliseconds to decode the image) per code in an image file, for
    `edge diag scan`. Raises ValueError when the file is not a readable image."""
    frame = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if frame is None:
        raise ValueError(f"{path} is not a readable image")
    started = time.perf_counter()
    texts = (decoder or QrDecoder()).decode(frame)
    elapsed_ms = (time.perf_counter() - started) * 1000
    return [(text, elapsed_ms) for text in texts]


class RepeatFilter:
    """Passes a code once while it stays in view: the same text again within `hold_s` of
    its last sighting is the same showing, not a new scan. A different code in between,
    or a gap longer than `hold_s`, makes it new again."""

    def __init__(self, hold_s: float) -> None:
        self._hold_s = hold_s
        self._last: str | None = None
        self._last_seen = 0.0

    def fresh(self, text: str, now: float) -> bool:
        repeat = text == self._last and now - self._last_seen < self._hold_s
        self._last, self._last_seen = text, now
        return not repeat

    def reset(self) -> None:
        self._last = None


class QrScanner:
    """Reads a camera and decodes only between start(consumer) and stop(); otherwise the
    camera is left alone. Each new code goes to the consumer, on the scanner's thread.
    After stop() returns, the consumer is not called again."""

    def __init__(self, camera: CameraSource, decoder: QrDecoder | None = None, *,
                 repeat_hold_s: float = 2.0, idle_wait_s: float = 0.05,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._camera = camera
        self._decoder = decoder or QrDecoder()
        self._repeats = RepeatFilter(repeat_hold_s)
        self._idle_wait_s = idle_wait_s
        self._clock = clock
        self._consumer: CodeConsumer | None = None
        self._delivery = threading.RLock()  # held while calling the consumer
        self._wake = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def scanning(self) -> bool:
        return self._consumer is not None

    def camera_check(self) -> str | None:
        """For the self-test: one frame's size, or None when no frame came. While a screen
        scans, the scanning thread owns the camera: its running is the proof."""
        if self.scanning:
            return "in use by a kiosk screen"
        frame = self._camera.read()
        return None if frame is None else f"{frame.shape[1]}x{frame.shape[0]}"

    def start(self, consumer: CodeConsumer) -> None:
        """Scan until stop(), handing each new code to `consumer` (replacing any other)."""
        with self._delivery, self._wake:
            if self._closed:
                raise RuntimeError("scanner is closed")
            self._consumer = consumer
            self._repeats.reset()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="qr-scanner", daemon=True)
                self._thread.start()
            self._wake.notify_all()

    def stop(self) -> None:
        with self._delivery:
            self._consumer = None

    def close(self) -> None:
        with self._delivery, self._wake:
            self._consumer = None
            self._closed = True
            self._wake.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while self._wait_until_asked():
            try:
                frame = self._camera.read()
                texts = [] if frame is None else self._decoder.decode(frame)
            except Exception:  # a camera or decoder fault must not end scanning for good
                log.exception("QR frame failed")
                texts, frame = [], None
            if frame is None:
                time.sleep(self._idle_wait_s)
            for text in texts:
                self._deliver(text)

    def _wait_until_asked(self) -> bool:
        with self._wake:
            while self._consumer is None and not self._closed:
                self._wake.wait()
            return not self._closed

    def _deliver(self, text: str) -> None:
        with self._delivery:
            consumer = self._consumer
            if consumer is None or not self._repeats.fresh(text, self._clock()):
                return
            try:
                consumer(text)
            except Exception:
                log.exception("QR consumer failed")  # the code itself is never logged
