"""Presentation attacks at the iris camera, through the real IrisService, the simulated
camera (whose live eyes answer its illuminator) and the liveness checks: prints and
screens are refused as "not_live", live eyes pass, and nothing is matched for an attack."""
from __future__ import annotations

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from edge.drivers.gpio import NirIlluminator
from edge.identity import TemplateCipher
from edge.identity.iris import extract
from edge.identity.iris_enrol import enrol_templates
from edge.identity.liveness import LivenessLimits, artefact_peak, eye_geometry, judge
from edge.identity.service import IrisService
from simulators.camera import SimulatedCamera, SyntheticIris, random_capture, render_eye

pytestmark = pytest.mark.timeout(120)

PERSON = 4242


@pytest.fixture()
def iris_station(tmp_path, request):
    """An IrisService on a fresh database with PERSON enrolled; the simulated camera is
    also the illuminator, as in simulate mode."""
    from edge.clock import FakeClock
    from edge.storage import Database

    clock = FakeClock()
    db = Database(tmp_path / "edge.sqlite3")
    db.upgrade()
    request.addfinalizer(db.dispose)
    camera = SimulatedCamera(fps=None, seed=5)
    service = IrisService(db, clock, TemplateCipher(bytes(32)), camera, illuminator=camera)
    service.start()
    rng = np.random.default_rng(1)
    templates = [extract(render_eye(SyntheticIris(PERSON), random_capture(rng))).template
                 for _ in range(4)]
    service.enrol_from_templates("res-live", [t for t in templates if t is not None],
                                 consent=True, recorded_how="test:button:I agree", assurance="high")
    return service, camera


@pytest.mark.parametrize("medium, check", [
    ("paper", None),  # halftone dots, mostly caught by the artefact check
    ("screen", "artefacts"),  # pixel grid
    ("photo", None),  # a clean print: only the illuminator checks can tell
])
def test_a_print_or_screen_of_an_enrolled_eye_opens_nothing(iris_station, medium, check) -> None:
    service, camera = iris_station
    camera.show_print(PERSON, medium=medium)
    result = service.identify_from_camera()
    assert result.outcome == "quality" and result.quality == "not_live"
    assert result.resident_id is None and not result.matched
    if check is not None:
        assert result.liveness == check
    else:
        assert result.liveness in ("artefacts", "glint_static", "glint_not_found", "pupil_static")


def test_the_live_eye_passes_the_same_checks_and_matches(iris_station) -> None:
    service, camera = iris_station
    camera.show_eye(PERSON)
    result = service.identify_from_camera()
    assert result.matched and result.resident_id == "res-live", result
    assert camera.pattern == "left"  # the illuminator is put back after the check


def test_a_screen_without_pixel_grid_is_still_caught_by_the_illuminator() -> None:
    """Each illuminator check on its own: a replay whose pupil moves by itself but whose
    glint ignores the LEDs, judged with the artefact check out of the way."""
    camera = SimulatedCamera(fps=None, seed=9)
    camera.show_print(PERSON, medium="photo")
    verdict = _judge_one_attempt(camera)
    assert not verdict.ok and verdict.cause in ("glint_static", "glint_not_found")
    camera = SimulatedCamera(fps=None, seed=9)
    camera.show_eye(PERSON, led_glint=(0.1, -0.2))  # a live eye whose glint never moves
    verdict = _judge_one_attempt(camera)
    assert not verdict.ok and verdict.cause == "glint_static"


def test_a_live_pupil_that_does_not_answer_the_light_is_refused() -> None:
    camera = SimulatedCamera(fps=None, seed=10)
    camera.show_eye(PERSON)
    camera.set_pattern("left")
    before = _good_frame(camera)
    after = [camera.read()[..., 0] for _ in range(15)]  # the light never changed
    verdict = judge(before, eye_geometry(before), after)
    assert not verdict.ok and verdict.cause in ("glint_static", "pupil_static")


def test_texture_check_flags_screens_and_most_prints_and_no_live_eye() -> None:
    """The artefact check alone (the illuminator checks back it up): every screen frame
    and most paper prints show a grid peak; no live eye does."""
    limit = LivenessLimits().max_artefact_peak
    camera = SimulatedCamera(fps=None, seed=11)
    peaks: dict[str, list[float]] = {"paper": [], "screen": [], "live": []}
    for person in range(4242, 4250):
        camera.show_print(person, medium="paper", frames=1)
        camera.show_print(person, medium="screen", frames=1)
        camera.show_eye(person, frames=1)
        for kind in peaks:
            frame = camera.read()[..., 0]
            peaks[kind].append(artefact_peak(frame, eye_geometry(frame).iris))
    assert all(p > limit for p in peaks["screen"]), peaks
    assert sum(p > limit for p in peaks["paper"]) >= 5, peaks
    assert all(p < limit for p in peaks["live"]), peaks


def test_gpio_illuminator_drives_the_two_leds() -> None:
    factory = MockFactory(pin_class=MockPWMPin)
    leds = NirIlluminator(12, 13, pin_factory=factory)
    leds.set_pattern("left")
    assert (factory.pin(12).state, factory.pin(13).state) == (NirIlluminator.DIM, 0)
    leds.set_pattern("right")
    assert (factory.pin(12).state, factory.pin(13).state) == (0, 1)
    leds.set_pattern("off")
    assert (factory.pin(12).state, factory.pin(13).state) == (0, 0)
    with pytest.raises(ValueError):
        leds.set_pattern("strobe")
    leds.close()


def _good_frame(camera: SimulatedCamera) -> np.ndarray:
    for _ in range(10):
        frame = camera.read()[..., 0]
        if extract(frame).template is not None:
            return frame
    raise AssertionError("no good frame in 10")


def _judge_one_attempt(camera: SimulatedCamera):
    camera.set_pattern("left")
    before = _good_frame(camera)
    camera.set_pattern("right")
    after = [camera.read()[..., 0] for _ in range(15)]
    camera.set_pattern("left")
    return judge(before, eye_geometry(before), after)


def test_enrolment_fuses_the_captures_that_agree_and_leaves_out_a_stranger() -> None:
    rng = np.random.default_rng(2)
    own = [extract(render_eye(SyntheticIris(7), random_capture(rng))).template for _ in range(3)]
    stranger = extract(render_eye(SyntheticIris(8), random_capture(rng))).template
    assert enrol_templates([own[0], stranger, own[1]]).code == "inconsistent"
    assert enrol_templates([own[0], stranger, own[1], own[2]]).ok
