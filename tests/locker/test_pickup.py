"""Resident pickups (code, QR token), wrong-code rate limit, retention and courier returns,
end to end through the HTTP API against the PTY simulator."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from edge.locker.models import CodeAttempt, Parcel
from tests.support.station import COURIER_ID, audits, deposit_parcel, outbox, pickup_state, wait_until

pytestmark = pytest.mark.timeout(60)


def test_pickup_by_code_opens_the_door_and_closing_completes_it(controller, client, courier, sim):
    spec, deposited = deposit_parcel(controller, client, courier, sim)
    reply = client.post("/api/locker/pickup", json={"code": deposited["pickup_code"]})
    assert reply.status_code == 200, reply.json
    assert reply.json["compartment"] == deposited["compartment"] and reply.json["state"] == "door_open"
    assert sim.is_open(spec.board, spec.lock)

    sim.set_item(spec.board, spec.lock, False)
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: pickup_state(client, reply.json["pickup_id"]) == "collected", what="collected")
    [collected] = outbox(controller.db, "parcel.collected")
    assert collected.data["parcel_id"] == deposited["parcel_id"] and collected.data["method"] == "code"
    # by parcel id too, and the code cannot be used twice
    assert pickup_state(client, deposited["parcel_id"]) == "collected"
    again = client.post("/api/locker/pickup", json={"code": deposited["pickup_code"]})
    assert again.status_code == 403 and again.json["error"]["code"] == "code_used"
    [accepted] = [a for a in audits(controller.db, "pickup_code") if a.result == "accepted"]
    assert deposited["pickup_code"] not in str(accepted.detail) + str(accepted.target)
    compartments = client.get("/api/locker/compartments").json["compartments"]
    assert compartments[deposited["compartment"] - 1]["state"] == "free"


def test_pickup_completes_when_the_item_sensor_goes_empty(controller, client, courier, sim):
    spec, deposited = deposit_parcel(controller, client, courier, sim)
    pickup = client.post("/api/locker/pickup", json={"code": deposited["pickup_code"]}).json
    sim.set_item(spec.board, spec.lock, False)  # door still open
    wait_until(lambda: pickup_state(client, pickup["pickup_id"]) == "collected", what="collected")
    assert sim.is_open(spec.board, spec.lock)


def test_wrong_codes_are_rate_limited_per_kiosk_and_audited(controller, client, courier, sim, fake_clock):
    _, deposited = deposit_parcel(controller, client, courier, sim)
    right = deposited["pickup_code"]
    wrong = "00000000" if right != "00000000" else "11111111"
    lefts = []
    for _ in range(4):
        reply = client.post("/api/locker/pickup", json={"code": wrong})
        assert reply.status_code == 403
        lefts.append(reply.json["error"]["attempts_left"])
    assert lefts == [4, 3, 2, 1]
    fifth = client.post("/api/locker/pickup", json={"code": wrong})
    assert fifth.status_code == 429 and fifth.json["error"]["code"] == "cooling_down"
    assert int(fifth.headers["Retry-After"]) == 300
    # during the cooldown even the right code is refused, and nothing opens
    blocked = client.post("/api/locker/pickup", json={"code": right})
    assert blocked.status_code == 429
    assert outbox(controller.db, "door.opened")[-1].data["reason"] == "deposit"
    malformed = client.post("/api/locker/pickup", json={"code": "12ab"})
    assert malformed.status_code == 429  # cooldown first: no hint about the code's shape either

    fake_clock.advance(seconds=301)
    assert client.post("/api/locker/pickup", json={"code": right}).status_code == 200
    results = [a.result for a in audits(controller.db, "pickup_code")]
    assert results == ["wrong"] * 4 + ["wrong_cooldown_started", "cooling_down", "cooling_down", "accepted"]
    every_audit = " ".join(f"{a.target} {a.detail} {a.actor_id}" for a in audits(controller.db))
    assert wrong not in every_audit and right not in every_audit
    with controller.db.read() as s:
        assert len(s.scalars(select(CodeAttempt)).all()) == 6  # 5 wrong + 1 right; refusals are not attempts


def test_wrong_code_window_forgets_old_mistakes(controller, client, courier, sim, fake_clock):
    for _ in range(4):
        assert client.post("/api/locker/pickup", json={"code": "12345678"}).status_code == 403
    fake_clock.advance(seconds=601)
    reply = client.post("/api/locker/pickup", json={"code": "12345678"})
    assert reply.status_code == 403 and reply.json["error"]["attempts_left"] == 4


def test_malformed_code_is_a_clear_error_not_an_attempt(controller, client, courier):
    reply = client.post("/api/locker/pickup", json={"code": "1234"})
    assert reply.status_code == 400 and reply.json["error"]["code"] == "bad_code_format"
    assert client.post("/api/locker/pickup", json={}).status_code == 400
    assert audits(controller.db, "pickup_code")[0].result == "malformed"


def test_pickup_by_qr_token_works_once(controller, client, courier, sim):
    spec, deposited = deposit_parcel(controller, client, courier, sim)
    token = deposited["pickup_token"]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    refused = client.post("/api/locker/pickup/token", json={"token": forged})
    assert refused.status_code == 403 and refused.json["error"]["reason"] == "forged"

    reply = client.post("/api/locker/pickup/token", json={"token": token})
    assert reply.status_code == 200, reply.json
    sim.set_item(spec.board, spec.lock, False)
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: pickup_state(client, reply.json["pickup_id"]) == "collected", what="collected")

    replay = client.post("/api/locker/pickup/token", json={"token": token})
    assert replay.status_code == 403 and replay.json["error"]["reason"] == "used"
    results = [a.result for a in audits(controller.db, "pickup_token")]
    assert results == ["refused_forged", "refused_used"]


def test_retention_marks_overdue_once_and_a_courier_takes_it_back(controller, client, courier, sim, fake_clock):
    spec, deposited = deposit_parcel(controller, client, courier, sim)
    locker = controller.services.locker
    fake_clock.advance(hours=71)
    assert locker.check_retention() == 0
    assert client.get("/api/locker/overdue", headers=courier).json["parcels"] == []
    refused = client.post("/api/locker/returns", headers=courier, json={"parcel_id": deposited["parcel_id"]})
    assert refused.status_code == 409

    fake_clock.advance(hours=1, seconds=1)
    assert locker.check_retention() == 1
    assert locker.check_retention() == 0  # once
    [overdue] = outbox(controller.db, "parcel.overdue")
    assert overdue.data["parcel_id"] == deposited["parcel_id"]
    listed = client.get("/api/locker/overdue", headers=courier).json["parcels"]
    assert [p["parcel_id"] for p in listed] == [deposited["parcel_id"]]

    reply = client.post("/api/locker/returns", headers=courier, json={"parcel_id": deposited["parcel_id"]})
    assert reply.status_code == 200 and reply.json["purpose"] == "return"
    assert sim.is_open(spec.board, spec.lock)
    sim.set_item(spec.board, spec.lock, False)
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: pickup_state(client, reply.json["pickup_id"]) == "returned", what="returned")
    [returned] = outbox(controller.db, "parcel.returned")
    assert returned.data["courier_id"] == COURIER_ID
    with controller.db.read() as s:
        assert s.get(Parcel, deposited["parcel_id"]).state == "returned"
    # the code of a returned parcel opens nothing
    assert client.post("/api/locker/pickup", json={"code": deposited["pickup_code"]}).status_code == 403
