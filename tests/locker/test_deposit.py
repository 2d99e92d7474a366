"""Courier deposits end to end: HTTP API -> service -> Kerong driver -> PTY simulator."""
from __future__ import annotations

import hashlib
import hmac

import pytest
from sqlalchemy import select

from edge.locker.models import Compartment, Deposit, Parcel
from tests.locker.conftest import (
    COURIER_ID, PHONE, audits, outbox, start_deposit, wait_until,
)

pytestmark = pytest.mark.timeout(60)


def deposit_state(client, courier, deposit_id):
    return client.get(f"/api/locker/deposits/{deposit_id}", headers=courier).json["state"]


def test_deposit_opens_a_door_and_closing_on_an_item_issues_a_code(controller, client, courier, sim):
    deposit = start_deposit(client, courier, size="M")
    number = deposit["compartment"]
    spec = controller.services["locker"].compartment_location(number)
    assert deposit["state"] == "door_open" and spec.size == "M"
    assert sim.is_open(spec.board, spec.lock)

    sim.set_item(spec.board, spec.lock, True)
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: deposit_state(client, courier, deposit["deposit_id"]) == "deposited", what="deposited")

    [event] = outbox(controller.db, "parcel.deposited")
    code = event.data["pickup_code"]
    assert len(code) == 8 and code.isdigit()
    assert event.data["phone_masked"] == "138****5678" and PHONE not in str(event.data)
    assert event.data["pickup_token"].startswith("P1.")
    secret = (controller.settings.keys_dir / "pickup_code.key").read_bytes()
    with controller.db.read() as s:
        parcel = s.scalars(select(Parcel)).one()
    assert parcel.code_hash == hmac.new(secret, code.encode(), hashlib.sha256).hexdigest()
    # the clear code is nowhere in the database but that one outbox event
    raw = controller.settings.database_path.read_bytes() + b"".join(
        p.read_bytes() for p in controller.settings.data_dir.glob("*-wal"))
    assert raw.count(code.encode()) <= raw.count(event.message_id.encode())
    assert not any(code in str(a.detail) for a in audits(controller.db))
    types = [e.type for e in outbox(controller.db)]
    assert types[:3] == ["door.opened", "door.closed", "parcel.deposited"]
    [opening] = [a for a in audits(controller.db, "door_open")]
    assert (opening.actor, opening.actor_id, opening.result) == ("courier", COURIER_ID, "opened")
    compartments = client.get("/api/locker/compartments").json["compartments"]
    assert compartments[number - 1]["state"] == "occupied"
    assert compartments[number - 1]["parcel"]["phone_masked"] == "138****5678"
