"""Courier deposits end to end: HTTP API -> service -> Kerong driver -> PTY simulator."""
from __future__ import annotations

import hashlib
import hmac

import pytest
from sqlalchemy import select

from edge.locker.models import Compartment, Deposit, Parcel
from tests.support.station import COURIER_ID, PHONE, audits, outbox, start_deposit, wait_until
from tests.support.platform import revealed

pytestmark = pytest.mark.timeout(60)


def deposit_state(client, courier, deposit_id):
    return client.get(f"/api/locker/deposits/{deposit_id}", headers=courier).json["state"]


def test_deposit_opens_a_door_and_closing_on_an_item_issues_a_code(controller, client, courier, sim):
    deposit = start_deposit(client, courier, size="M")
    number = deposit["compartment"]
    spec = controller.services.locker.compartment_location(number)
    assert deposit["state"] == "door_open" and spec.size == "M"
    assert sim.is_open(spec.board, spec.lock)

    sim.set_item(spec.board, spec.lock, True)
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: deposit_state(client, courier, deposit["deposit_id"]) == "deposited", what="deposited")

    [event] = outbox(controller.db, "parcel.deposited")
    assert "pickup_code" not in event.data and "pickup_token" not in event.data
    code = revealed(event)["pickup_code"]
    assert len(code) == 8 and code.isdigit()
    assert event.data["phone_masked"] == "138****5678" and PHONE not in str(event.data)
    assert revealed(event)["pickup_token"].startswith("P1.")
    secret = (controller.settings.keys_dir / "pickup_code.key").read_bytes()
    with controller.db.read() as s:
        parcel = s.scalars(select(Parcel)).one()
    assert parcel.code_hash == hmac.new(secret, code.encode(), hashlib.sha256).hexdigest()
    # the clear code is nowhere in the database or its WAL: it left sealed
    raw = controller.settings.database_path.read_bytes() + b"".join(
        p.read_bytes() for p in controller.settings.data_dir.glob("*-wal"))
    assert code.encode() not in raw
    assert not any(code in str(a.detail) for a in audits(controller.db))
    types = [e.type for e in outbox(controller.db)]
    assert types[:3] == ["door.opened", "door.closed", "parcel.deposited"]
    [opening] = [a for a in audits(controller.db, "door_open")]
    assert (opening.actor, opening.actor_id, opening.result) == ("courier", COURIER_ID, "opened")
    compartments = client.get("/api/locker/compartments").json["compartments"]
    assert compartments[number - 1]["state"] == "occupied"
    assert compartments[number - 1]["parcel"]["phone_masked"] == "138****5678"


def test_cancel_before_closing_leaves_no_parcel(controller, client, courier, sim):
    deposit = start_deposit(client, courier)
    reply = client.post(f"/api/locker/deposits/{deposit['deposit_id']}/cancel", headers=courier)
    assert reply.status_code == 200 and reply.json["state"] == "cancelled"
    spec = controller.services.locker.compartment_location(deposit["compartment"])
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: outbox(controller.db, "door.closed"), what="door.closed")
    assert outbox(controller.db, "parcel.deposited") == []
    again = client.post(f"/api/locker/deposits/{deposit['deposit_id']}/cancel", headers=courier)
    assert again.status_code == 409 and again.json["error"]["code"] == "wrong_state"
    assert audits(controller.db, "deposit_cancel")[0].actor_id == COURIER_ID


def test_door_closed_empty_can_be_reopened_then_completed(controller, client, courier, sim):
    deposit = start_deposit(client, courier, size="S")
    spec = controller.services.locker.compartment_location(deposit["compartment"])
    sim.close_door(spec.board, spec.lock)  # closed with nothing inside
    wait_until(lambda: deposit_state(client, courier, deposit["deposit_id"]) == "empty_closed", what="empty_closed")

    reopened = client.post(f"/api/locker/deposits/{deposit['deposit_id']}/reopen", headers=courier)
    assert reopened.status_code == 200, reopened.json
    assert reopened.json["state"] == "door_open" and reopened.json["compartment"] == deposit["compartment"]
    assert sim.is_open(spec.board, spec.lock)
    sim.set_item(spec.board, spec.lock, True)
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: deposit_state(client, courier, deposit["deposit_id"]) == "deposited", what="deposited")
    reasons = [e.data["reason"] for e in outbox(controller.db, "door.opened")]
    assert reasons == ["deposit", "deposit_reopen"]
    late = client.post(f"/api/locker/deposits/{deposit['deposit_id']}/reopen", headers=courier)
    assert late.status_code == 409


def test_jammed_door_is_flagged_and_another_compartment_opens(controller, client, courier, sim):
    sim.jam(0, 6)  # compartment 7: the first free M compartment
    deposit = start_deposit(client, courier, size="M")
    assert deposit["compartment"] == 8 and deposit["state"] == "door_open"
    assert "7" in deposit["message"]
    assert sim.is_open(0, 7) and not sim.is_open(0, 6)
    [fault] = outbox(controller.db, "door.fault")
    assert fault.data["compartment"] == 7 and fault.data["attempts"] == 2
    unlocks = [f for f in sim.frames_received if f.data[2] == 0x31 and f.data[1] == 0x06]
    assert len(unlocks) == 2  # the driver's one confirmed retry, then give up
    compartments = client.get("/api/locker/compartments").json["compartments"]
    assert compartments[6]["state"] == "fault" and compartments[6]["fault"]
    # the flagged compartment is never offered again
    second = start_deposit(client, courier, size="M", waybill="YT42")
    assert second["compartment"] == 9
    failed = [a for a in audits(controller.db, "door_open") if a.result == "failed"]
    assert [a.target for a in failed] == ["compartment:7"]


def test_courier_reports_a_door_that_did_not_open(controller, client, courier, sim):
    deposit = start_deposit(client, courier, size="L")
    first = deposit["compartment"]
    reply = client.post(f"/api/locker/deposits/{deposit['deposit_id']}/door-not-opened", headers=courier)
    assert reply.status_code == 200, reply.json
    assert reply.json["compartment"] != first and reply.json["state"] == "door_open"
    assert reply.json["deposit_id"] == deposit["deposit_id"]
    [fault] = outbox(controller.db, "door.fault")
    assert fault.data["compartment"] == first
    with controller.db.read() as s:
        assert s.get(Compartment, first).fault == "courier reported the door did not open"
        assert s.get(Deposit, deposit["deposit_id"]).compartment == reply.json["compartment"]


def test_bad_input_gets_a_clear_error_and_opens_nothing(controller, client, courier, sim):
    cases = [
        ({"waybill": "SF1", "phone": "12345", "size": "M"}, "bad_phone"),
        ({"waybill": "SF1", "phone": "13812345678", "size": "XL"}, "bad_size"),
        ({"waybill": "x" * 65, "phone": "13812345678", "size": "M"}, "bad_waybill"),
        ({"waybill": "SF1", "size": "M"}, "invalid_input"),
    ]
    for body, code in cases:
        reply = client.post("/api/locker/deposits", headers=courier, json=body)
        assert (reply.status_code, reply.json["error"]["code"]) == (400, code)
    assert client.post("/api/locker/deposits", headers=courier, data="not json").status_code == 415  # JSON only
    assert client.post("/api/locker/deposits", json={"waybill": "a", "phone": PHONE, "size": "M"}).status_code == 401
    bad_login = client.post("/api/locker/courier/login", json={"code": "999999"})
    assert bad_login.status_code == 401 and bad_login.json["error"]["code"] == "unknown_courier"
    assert not any(f.data[2] == 0x31 for f in sim.frames_received)
    assert outbox(controller.db, "door.opened") == []


def test_no_free_compartment_of_a_size(controller, client, courier, sim):
    for _ in range(4):  # 2 boards x 4 large compartments
        start_deposit(client, courier, size="L")
    for _ in range(4):
        start_deposit(client, courier, size="L")
    reply = client.post("/api/locker/deposits", headers=courier,
                        json={"waybill": "ZT9", "phone": PHONE, "size": "L"})
    assert reply.status_code == 409 and reply.json["error"]["code"] == "no_free_compartment"


def test_another_courier_cannot_see_a_deposit(controller, client, courier):
    deposit = start_deposit(client, courier)
    controller.settings.locker.couriers["135790"] = "courier-other"
    other = client.post("/api/locker/courier/login", json={"code": "135790"}).json["token"]
    reply = client.post(f"/api/locker/deposits/{deposit['deposit_id']}/cancel",
                        headers={"Authorization": f"Bearer {other}"})
    assert reply.status_code == 404
    assert deposit_state(client, courier, deposit["deposit_id"]) == "door_open"
