"""QR codes end to end: the simulated camera shows a phone screen, the real scanner (OpenCV
frames, zxing-cpp) decodes it while the pickup screen waits, and the screen that asked
validates it; the door opens in the PTY lock-board simulator, or the code is refused and
audited."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import select

from edge.locker.models import UsedPickupToken
from tests.support.station import COURIER_CODE, RESIDENT_A, Station, audits, wait_until

pytestmark = pytest.mark.timeout(60)


@contextmanager
def waiting_screen(station: Station) -> Iterator[None]:
    """A page open on the scan topic (as pickup.html and identify.html are): its stream
    keeps the scanner reading until the page goes away."""
    stream = station.client.get("/live/stream?topic=scan", buffered=False)
    chunks = iter(stream.response)
    next(chunks)  # the stream has begun: the page is waiting for a scan
    try:
        yield
    finally:
        stream.close()


def scan_state(station: Station) -> str:
    return station.client.get("/live/state?topic=scan").get_json()["scan"]


def show_and_submit(station: Station, text: str, form: str = "/pickup/scan") -> object:
    """Hold `text` as a QR code in front of the camera while the screen waits, then the
    screen's own form takes the reading (what data-live-submit does in the browser)."""
    with waiting_screen(station):
        station.qr_camera.show_qr(text)
        wait_until(lambda: scan_state(station) == "ready", timeout=15, what="the scanner decoded the code")
        reply = station.post(form)
        station.qr_camera.show_nothing()
    return reply


def test_the_scanner_reads_only_while_a_screen_waits(station: Station) -> None:
    scanner = station.controller.services.qr_scanner
    assert not scanner.scanning and station.qr_camera.frames_read == 0
    with waiting_screen(station):
        assert scanner.scanning
        wait_until(lambda: station.qr_camera.frames_read > 0, what="camera frames read")
    assert not scanner.scanning
    stopped_at = station.qr_camera.frames_read
    station.client.get("/pickup/")  # a page with no stream open reads nothing
    assert station.qr_camera.frames_read <= stopped_at + 1  # at most the frame in flight


def test_pickup_qr_opens_its_own_door_once(station: Station) -> None:
    mine = station.deposit(RESIDENT_A[1])
    other = station.deposit("13700000001")

    reply = show_and_submit(station, mine["pickup_token"])

    assert reply.status_code == 302 and reply.location.endswith(f"/pickup/door/{mine['parcel_id']}")
    assert station.door_open(mine["compartment"]) and not station.door_open(other["compartment"])
    with station.controller.db.read() as s:
        assert [u.parcel_id for u in s.scalars(select(UsedPickupToken))] == [mine["parcel_id"]]
    # Held in view, the same code is one reading: nothing new for the next screen to claim.
    with waiting_screen(station):
        station.qr_camera.show_qr(mine["pickup_token"])
        wait_until(lambda: scan_state(station) == "ready", timeout=15, what="first reading")
        station.post("/pickup/scan")  # refused: already used (below)
        seen = station.qr_camera.frames_read
        wait_until(lambda: station.qr_camera.frames_read > seen + 10, what="ten more frames")
        assert scan_state(station) == "waiting"
    [refused] = [a for a in audits(station.controller.db, "pickup_token") if a.result.startswith("refused")]
    assert refused.result == "refused_used"


def test_forged_and_altered_tokens_are_refused_and_audited(station: Station) -> None:
    parcel = station.deposit(RESIDENT_A[1])
    token = parcel["pickup_token"]
    altered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")

    for text in (altered, "P1.not-a-token", "hello world"):
        reply = show_and_submit(station, text)
        assert reply.status_code == 302 and reply.location.endswith("/pickup/")

    assert not station.door_open(parcel["compartment"])
    results = [a.result for a in audits(station.controller.db, "pickup_token")]
    assert results[0] == "refused_forged" and all(r.startswith("refused_") for r in results)
    assert len(results) == 3
    assert all(token not in str(a.detail) + str(a.target) for a in audits(station.controller.db))


def test_expired_token_is_refused_and_audited(station: Station) -> None:
    parcel = station.deposit(RESIDENT_A[1])
    station.clock.advance(hours=station.controller.settings.locker.retention_hours + 1)

    reply = show_and_submit(station, parcel["pickup_token"])

    assert reply.location.endswith("/pickup/") and not station.door_open(parcel["compartment"])
    assert [a.result for a in audits(station.controller.db, "pickup_token")] == ["refused_expired"]


def test_a_resident_code_goes_to_the_identify_screen(station: Station) -> None:
    from simulators.demo import demo_token_issuer

    issuer = demo_token_issuer(station.controller.settings.keys_dir)
    token = issuer.issue(RESIDENT_A[0], "张*华", station.clock.now() + timedelta(minutes=5))

    reply = show_and_submit(station, token, form="/identify/scan")

    assert reply.status_code == 302
    assert "张*华" in station.client.get("/").get_data(as_text=True)


def test_a_courier_badge_logs_the_courier_in_and_a_wrong_one_is_refused(station: Station) -> None:
    
    refused = show_and_submit(station, "999999", form="/courier/scan")
    assert refused.location.endswith("/courier/")
    assert [a.result for a in audits(station.controller.db, "courier_login")] == ["refused"]

    accepted = show_and_submit(station, COURIER_CODE, form="/courier/scan")
    assert accepted.location.endswith("/courier/waybill")
