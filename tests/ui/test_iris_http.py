"""The iris live topic and the enrol screen's live-eye refusal over HTTP (ADR 0144): the
real controller in simulate mode served by waitress, its event stream read as bytes, the
simulated iris camera driven through the kiosk's own simulate control."""
from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_identity_iris import sign_in
from tests.support.iris import iris
from tests.support.station import RESIDENT_A, Station, audits, running_station

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    with running_station(tmp_path / "data", simulate=True, offline_broker=True, serve=True) as running:
        yield running


def states(response: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
    while True:
        line = response.fp.readline().decode()
        if line.startswith("data: "):
            yield json.loads(line[len("data: "):])


def test_the_iris_stream_runs_the_guide_and_carries_only_the_verdict(station: Station) -> None:
    assert station.client.get("/live/state?topic=iris").get_json() == {
        "guide": "waiting", "ready": False, "presence": False}  # no screen open: nothing reads the camera
    reads = station.iris_camera.frames_read
    connection = http.client.HTTPConnection("127.0.0.1", int(station.url.rsplit(":", 1)[1]), timeout=60)
    connection.request("GET", "/live/stream?topic=iris")
    stream = states(connection.getresponse())
    assert station.post("/iris/simulate", sim_person=RESIDENT_A[0], sim_scene="too_far").get_json() == {"ok": True}
    state = next(s for s in stream if s.get("guide") == "too_far")
    assert station.iris_camera.frames_read > reads
    assert set(state) <= {"guide", "ready", "eye_x", "eye_y", "eye_r", "presence"}
    assert state["ready"] is False and len(json.dumps(state)) < 150  # three rounded numbers, no picture

    station.post("/iris/simulate", sim_person=RESIDENT_A[0], sim_scene="live")
    ready = next(s for s in stream if s.get("ready"))
    assert ready["guide"] == "ok" and 0.1 < ready["eye_r"] < 0.3
    connection.close()


def test_the_simulate_control_knows_its_scenes(station: Station) -> None:
    assert station.post("/iris/simulate", sim_person=RESIDENT_A[0], sim_scene="hologram").status_code == 400
    assert station.post("/iris/simulate", sim_for="capture", sim_scene="live").status_code == 400  # nobody signed in


def test_a_photo_at_the_enrol_screen_enrols_nothing_and_asks_for_consent_again(station: Station) -> None:
    sign_in(station, RESIDENT_A[1])
    assert station.post("/iris/consent").location.endswith("/iris/capture")
    assert station.post("/iris/capture", sim_scene="live").status_code == 200  # one live capture kept

    refused = station.post("/iris/capture", sim_scene="photo")
    assert refused.location.endswith("/iris/enrol")
    page = station.client.get("/iris/enrol").get_data(as_text=True)
    assert "无法确认是真人眼睛，因此没有登记" in page and "/iris/consent" in page
    assert station.client.get("/iris/capture").location.endswith("/iris/enrol")  # consent is spent
    assert not iris(station).is_enrolled(RESIDENT_A[0])
    [refusal] = [a for a in audits(station.controller.db, "iris_enrol")]
    assert refusal.result == "refused_not_live" and refusal.actor_id == RESIDENT_A[0]

    assert station.post("/iris/consent").location.endswith("/iris/capture")
    for _ in range(6):
        if station.post("/iris/capture", sim_scene="live").status_code == 302:
            break
    assert iris(station).is_enrolled(RESIDENT_A[0])
