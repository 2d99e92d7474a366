"""The live-eye check at enrolment (ADR 0144): through the real IrisService, its SQLite
store and the simulated camera (its own illuminator, as in simulate mode), a print or a
screen of someone's eye enrols nothing, and a live eye enrols."""
from __future__ import annotations

from typing import Any

import pytest

from edge.clock import FakeClock
from edge.identity import TemplateCipher
from edge.identity.service import IrisError, IrisService
from edge.storage import Database
from simulators.camera import SimulatedCamera
from tests.support.station import audits

pytestmark = pytest.mark.timeout(180)

PERSON, RESIDENT = 5151, "res-enrol"


@pytest.fixture()
def station(tmp_path: Any) -> Any:
    db = Database(tmp_path / "edge.sqlite3")
    db.upgrade()
    camera = SimulatedCamera(fps=None, seed=21)
    service = IrisService(db, FakeClock(), TemplateCipher(bytes(32)), camera, illuminator=camera)
    service.start()
    yield service, camera, db
    service.stop()
    db.dispose()


def capture_until_enrolled(service: IrisService) -> int:
    for attempt in range(1, 7):
        progress = service.capture_for_enrolment(RESIDENT, assurance="high")
        if progress.captured >= progress.needed:
            service.finish_enrolment(RESIDENT, consent=True, recorded_how="test:button:I agree",
                                     assurance="high")
            return attempt
    raise AssertionError("six live captures did not enrol")


@pytest.mark.parametrize("medium", ["paper", "photo", "screen"])
def test_a_print_or_screen_at_enrolment_is_refused_and_enrols_nothing(station, medium) -> None:
    service, camera, db = station
    service.start_enrolment(RESIDENT, assurance="high")
    camera.show_print(PERSON, medium=medium)

    with pytest.raises(IrisError) as refused:
        service.capture_for_enrolment(RESIDENT, assurance="high")

    assert refused.value.code == "not_live"
    assert "without a photo or a screen" in refused.value.message
    assert not service.is_enrolled(RESIDENT)
    [refusal] = audits(db, "iris_enrol")
    assert refusal.result == "refused_not_live" and refusal.actor_id == RESIDENT
    assert refusal.detail["liveness"] in ("artefacts", "glint_static", "glint_not_found", "pupil_static")
    with pytest.raises(IrisError) as nothing_kept:  # no capture of the print was kept
        service.finish_enrolment(RESIDENT, consent=True, recorded_how="test:button:I agree",
                                 assurance="high")
    assert nothing_kept.value.code == "too_few_captures"
    assert camera.pattern == "left"  # the illuminator is put back after the check

    camera.show_eye(PERSON)  # the resident's own live eye then enrols
    capture_until_enrolled(service)
    assert service.is_enrolled(RESIDENT)
    assert [a.result for a in audits(db, "iris_enrol")] == ["refused_not_live", "refused_too_few_captures",
                                                           "enrolled"]


def test_a_print_swapped_in_halfway_voids_the_live_captures_before_it(station) -> None:
    """Two live captures, then a photo: the enrolment starts over, so no template can mix
    a live eye with a print (or two people)."""
    service, camera, _db = station
    service.start_enrolment(RESIDENT, assurance="high")
    camera.show_eye(PERSON)
    kept = [service.capture_for_enrolment(RESIDENT, assurance="high").captured for _ in range(2)]
    assert kept == [1, 2]
    camera.show_print(PERSON, medium="photo")
    with pytest.raises(IrisError, match="live eye") as refused:
        service.capture_for_enrolment(RESIDENT, assurance="high")
    assert refused.value.code == "not_live"

    camera.show_eye(PERSON)
    assert service.capture_for_enrolment(RESIDENT, assurance="high").captured == 1


def test_a_live_eye_enrols_through_the_same_check_and_then_opens(station) -> None:
    service, camera, _db = station
    service.start_enrolment(RESIDENT, assurance="high")
    camera.show_eye(PERSON)
    reads_before = camera.frames_read
    attempts = capture_until_enrolled(service)
    # every capture watched the eye answer the illuminator (15 frames after the switch)
    assert camera.frames_read - reads_before >= attempts * 16
    assert service.identify_from_camera().resident_id == RESIDENT


def test_without_an_illuminator_the_station_does_not_enrol(tmp_path) -> None:
    db = Database(tmp_path / "edge.sqlite3")
    db.upgrade()
    camera = SimulatedCamera(fps=None, seed=22)
    service = IrisService(db, FakeClock(), TemplateCipher(bytes(32)), camera, illuminator=None)
    try:
        service.start_enrolment(RESIDENT, assurance="high")
        camera.show_eye(PERSON)
        with pytest.raises(IrisError) as refused:
            service.capture_for_enrolment(RESIDENT, assurance="high")
        assert refused.value.code == "liveness_unavailable"
        assert [a.detail for a in audits(db, "iris_enrol")] == [{"liveness": "no_illuminator"}]
    finally:
        service.stop()
        db.dispose()
