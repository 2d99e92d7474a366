"""Live guidance while a screen waits for an eye (ADR 0144): IrisService.guiding() on the
simulated camera says exactly what the capture's gates say of the frames it read, keeps
no picture, and steps aside while a capture (with its illuminator switch) has the camera."""
from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np
import pytest

from edge.clock import FakeClock
from edge.identity import TemplateCipher
from edge.identity.iris import extract
from edge.identity.service import Guidance, IrisService
from edge.storage import Database
from simulators.camera import SimulatedCamera
from tests.support.wait import wait_until

pytestmark = pytest.mark.timeout(180)

PERSON = 6161


class RecordingCamera:
    """The simulated camera, keeping every frame it handed out so the test can judge them
    itself (a real camera and real frames; only the bookkeeping is added)."""

    def __init__(self, camera: SimulatedCamera) -> None:
        self.camera, self.frames = camera, []
        self._lock = threading.Lock()

    def read(self) -> np.ndarray | None:
        frame = self.camera.read()
        with self._lock:
            self.frames.append(None if frame is None else frame.copy())
        return frame

    def close(self) -> None:
        self.camera.close()

    def set_pattern(self, pattern: str) -> None:
        self.camera.set_pattern(pattern)


@pytest.fixture()
def service(tmp_path: Any) -> Any:
    db = Database(tmp_path / "edge.sqlite3")
    db.upgrade()
    camera = SimulatedCamera(fps=None, seed=31)
    built = IrisService(db, FakeClock(), TemplateCipher(bytes(32)), camera, illuminator=camera)
    built.start()
    yield built, camera
    built.stop()
    db.dispose()


def codes_seen(service: IrisService, stop_when: str, timeout: float = 60) -> list[str]:
    seen: list[str] = []

    def changed() -> None:
        seen.append(service.guidance().code)

    with service.guiding(changed):
        wait_until(lambda: stop_when in seen, timeout=timeout, what=f"guidance {stop_when}")
    return seen


@pytest.mark.parametrize("trouble, code", [
    ("too_far", "too_far"), ("blurred", "blurred"), ("closed", "covered"), ("too_bright", "too_bright"),
])
def test_guidance_names_the_gate_that_refuses_the_eye(service, trouble, code) -> None:
    iris, camera = service
    camera.show_eye(PERSON, trouble=trouble)
    assert code in codes_seen(iris, code)
    camera.show_eye(PERSON)  # the trouble fixed: good, and steady after a few frames
    codes_seen(iris, "ok")


def test_every_word_shown_is_what_the_gates_said_of_a_frame_read(tmp_path) -> None:
    """Never a cause that is not true: the guidance published, in order, is the capture
    gates' verdict on the frames the guide read (the words change when the verdict does;
    the outline and steadiness may change in between)."""
    db = Database(tmp_path / "edge.sqlite3")
    db.upgrade()
    sim = SimulatedCamera(fps=None, seed=32)
    camera = RecordingCamera(sim)
    iris = IrisService(db, FakeClock(), TemplateCipher(bytes(32)), camera, illuminator=sim)
    try:
        for trouble in ("too_far", "blurred", "closed"):
            sim.show_eye(PERSON, trouble=trouble, frames=2)
        sim.show_eye(PERSON)
        shown = [c for c in codes_seen(iris, "ok") if c not in ("waiting", "capturing")]
        published = [c for i, c in enumerate(shown) if i == 0 or shown[i - 1] != c]  # the words
        verdicts = [extract(f).quality.code if f is not None else "no_frame" for f in camera.frames]
        changes = [c for i, c in enumerate(verdicts) if i == 0 or verdicts[i - 1] != c]
        # the guide may have read one more frame than it judged when the test stopped it
        assert published in (changes, changes[:-1]), (published, verdicts)
        assert {"too_far", "blurred", "covered", "ok"} <= set(verdicts)
    finally:
        iris.stop()
        db.dispose()


def test_the_screen_gets_a_verdict_and_three_rounded_numbers_never_a_picture(service) -> None:
    iris, camera = service
    camera.show_eye(PERSON)
    seen: list[Guidance] = []
    with iris.guiding(lambda: seen.append(iris.guidance())):
        wait_until(lambda: any(g.steady for g in seen), timeout=60, what="steady")
    steady = next(g for g in seen if g.steady)
    state = steady.state()
    assert set(state) == {"guide", "ready", "eye_x", "eye_y", "eye_r"}
    assert state["guide"] == "ok" and state["ready"] is True
    for key in ("eye_x", "eye_y", "eye_r"):
        value = state[key]
        assert isinstance(value, float) and 0 < value < 1 and round(value * 50, 6) == round(value * 50)
    assert 0.4 <= state["eye_x"] <= 0.6 and 0.1 <= state["eye_r"] <= 0.25  # centred, near enough
    assert len(json.dumps(state)) < 120
    # the steadiness needs STEADY_FRAMES good frames in a row: the first "ok" is not yet steady
    first_ok = next(g for g in seen if g.code == "ok")
    assert not first_ok.steady


def test_a_capture_takes_the_camera_from_the_guide_and_still_sees_a_live_eye(service) -> None:
    """The liveness check needs the 15 frames after the illuminator switch to itself: with
    the guide running, a live eye still passes (and a print still fails), and the screen
    is told "capturing" meanwhile, then steadiness starts over."""
    iris, camera = service
    iris.enrol_from_templates("res-g", [t for t in (extract(camera_frame(PERSON, s)).template
                                                     for s in range(4)) if t is not None],
                              consent=True, recorded_how="test:button:I agree", assurance="high")
    seen: list[Guidance] = []
    camera.show_eye(PERSON)
    with iris.guiding(lambda: seen.append(iris.guidance())):
        wait_until(lambda: any(g.steady for g in seen), timeout=60, what="steady")
        result = iris.identify_from_camera()
        assert result.matched and result.resident_id == "res-g", result
        assert Guidance("capturing") in seen
        after = seen[seen.index(Guidance("capturing")):]
        camera.show_print(PERSON, medium="photo")
        assert iris.identify_from_camera().quality == "not_live"
    assert [g.code for g in after[:2]] == ["capturing", "waiting"]


def camera_frame(person: int, seed: int) -> np.ndarray:
    camera = SimulatedCamera(fps=None, seed=seed)
    camera.show_eye(person)
    return camera.read()


def test_the_last_screen_to_leave_stops_the_guide(service) -> None:
    iris, camera = service
    camera.show_eye(PERSON)
    with iris.guiding(lambda: None), iris.guiding(lambda: None):
        wait_until(lambda: iris.guidance().code != "waiting", timeout=30, what="a verdict")
    wait_until(lambda: not any(t.name == "iris-guide" and t.is_alive() for t in threading.enumerate()),
               timeout=10, what="the guide thread to end")
