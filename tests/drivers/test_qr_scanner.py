"""The on-demand QR scanner reading the simulated kiosk camera through the real decoder."""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.drivers.camera import OpenCVCamera, parse_camera_spec
from edge.drivers.qr import QrScanner, RepeatFilter
from simulators.camera import QrScene, SimulatedCamera, render_qr_scene

from tests.support.inbox import Inbox
from tests.support.wait import wait_until

pytestmark = pytest.mark.timeout(30)



@pytest.fixture
def camera() -> SimulatedCamera:
    return SimulatedCamera(size=(640, 480), fps=200, seed=3)


@pytest.fixture
def scanner(camera: SimulatedCamera) -> Iterator[QrScanner]:
    reader = QrScanner(camera, idle_wait_s=0.01)
    yield reader
    reader.close()


def test_camera_is_left_alone_until_someone_asks(camera, scanner) -> None:
    camera.show_qr("P1.held")
    time.sleep(0.2)
    assert camera.frames_read == 0 and not scanner.scanning
    inbox = Inbox()
    scanner.start(inbox)
    assert inbox.wait_for(1) == ["P1.held"]


def test_a_code_held_in_view_is_delivered_once(camera, scanner) -> None:
    camera.show_qr("P1.once")
    inbox = Inbox()
    scanner.start(inbox)
    inbox.wait_for(1)
    seen = camera.frames_read
    wait_until(lambda: camera.frames_read >= seen + 20, timeout=10, what='20 more frames read')
    assert inbox.codes == ["P1.once"]


def test_codes_in_turn_and_a_code_shown_again_after_another(camera, scanner) -> None:
    inbox = Inbox()
    scanner.start(inbox)
    camera.show_qr("A-code", frames=5)
    camera.show_qr("B-code", frames=5)
    camera.show_qr("A-code", frames=5)
    assert inbox.wait_for(3) == ["A-code", "B-code", "A-code"]


def test_nothing_is_delivered_after_stop(camera, scanner) -> None:
    inbox = Inbox()
    scanner.start(inbox)
    camera.show_qr("first")
    inbox.wait_for(1)
    scanner.stop()
    camera.show_qr("second")
    stopped_at = camera.frames_read
    time.sleep(0.3)
    assert inbox.codes == ["first"] and not scanner.scanning
    assert camera.frames_read <= stopped_at + 1  # at most the frame in hand when stopped


def test_restart_hands_codes_to_the_new_consumer(camera, scanner) -> None:
    camera.show_qr("same-code")
    first, second = Inbox(), Inbox()
    scanner.start(first)
    first.wait_for(1)
    scanner.start(second)  # a new screen asks: the code still in view is new to it
    assert second.wait_for(1) == ["same-code"] and first.codes == ["same-code"]


def test_failing_consumer_and_failing_camera_do_not_end_scanning(camera) -> None:
    class FlakyCamera:
        def __init__(self) -> None:
            self.calls = 0

        def read(self) -> np.ndarray | None:
            self.calls += 1
            if self.calls % 3 == 0:
                raise OSError("USB hiccup")
            if self.calls % 3 == 1:
                return None
            return camera.read()

        def close(self) -> None: ...

    camera.show_qr("boom", frames=3)
    camera.show_qr("after")
    inbox = Inbox()

    def fragile(code: str) -> None:
        inbox(code)
        if code == "boom":
            raise RuntimeError("consumer bug")

    reader = QrScanner(FlakyCamera(), idle_wait_s=0.001)
    try:
        reader.start(fragile)
        assert inbox.wait_for(2) == ["boom", "after"]
    finally:
        reader.close()


def test_repeat_filter_lets_a_code_back_after_a_gap() -> None:
    repeats = RepeatFilter(hold_s=2.0)
    assert repeats.fresh("A", 0.0)
    assert not repeats.fresh("A", 1.5)
    assert not repeats.fresh("A", 3.0)  # still in view: every sighting extends the hold
    assert repeats.fresh("A", 5.5)  # gone for more than the hold, then shown again
    assert repeats.fresh("B", 5.6) and repeats.fresh("A", 5.7)


def test_opencv_camera_reads_a_stream_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    frame = render_qr_scene("from-a-file", QrScene(code_fraction=0.5, seed=2))
    for _ in range(3):
        writer.write(frame)
    writer.release()
    source = OpenCVCamera(str(path), width=640, height=480, reopen_s=0)
    reader = QrScanner(source)
    inbox = Inbox()
    try:
        reader.start(inbox)
        assert inbox.wait_for(1) == ["from-a-file"]
    finally:
        reader.close()
        source.close()
    direct = OpenCVCamera(str(path), reopen_s=0)
    frames = [direct.read() for _ in range(5)]
    direct.close()
    assert [f is None for f in frames] == [False, False, False, True, False]  # end, reopen


def test_missing_camera_gives_no_frame_not_an_error(tmp_path: Path) -> None:
    source = OpenCVCamera(str(tmp_path / "no-camera.avi"), reopen_s=60)
    assert source.read() is None and source.read() is None
    source.close()


def test_camera_spec_parsing() -> None:
    assert parse_camera_spec("0") == 0 and parse_camera_spec(" 2 ") == 2
    assert parse_camera_spec("rtsp://127.0.0.1/cam") == "rtsp://127.0.0.1/cam"
