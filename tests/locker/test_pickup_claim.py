"""A right pickup code is claimed in one transaction before the unlock (ADR 0137): what that
claim writes, what happens when the door then does not open, and the claim transaction
itself (plain sqlite3 on its own connection, in the same write turns)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from edge.locker.models import CodeAttempt, Compartment, DoorOperation, Parcel
from edge.ops.metrics import CODE_ATTEMPTS
from edge.storage import Actor, AuditEntry
from edge.storage.audit import audit, audit_now
from tests.support.station import audits, deposit_parcel, outbox

pytestmark = pytest.mark.timeout(60)


def test_a_right_code_is_claimed_then_opened_with_every_record(controller, client, courier, sim):
    spec, deposited = deposit_parcel(controller, client, courier, sim)
    accepted_before = CODE_ATTEMPTS.labels("accepted")._value.get()

    reply = client.post("/api/locker/pickup", json={"code": deposited["pickup_code"]})

    assert reply.status_code == 200 and reply.json["state"] == "door_open", reply.json
    assert sim.is_open(spec.board, spec.lock)
    with controller.db.read() as s:
        op = s.get(DoorOperation, reply.json["pickup_id"])
        assert (op.parcel_id, op.state, op.method) == (deposited["parcel_id"], "door_open", "code")
        assert s.get(Parcel, deposited["parcel_id"]).state == "pickup_open"
        assert s.scalars(select(CodeAttempt.ok)).all() == [True]
    [accepted] = [a for a in audits(controller.db, "pickup_code") if a.result == "accepted"]
    assert accepted.actor == "resident" and accepted.target == deposited["parcel_id"]
    assert accepted.detail["pickup_id"] == reply.json["pickup_id"]
    assert deposited["pickup_code"] not in str(accepted.detail)
    opened = [a for a in audits(controller.db, "door_open") if a.detail.get("reason") == "pickup"]
    assert [(a.actor, a.result) for a in opened] == [("resident", "opened")]
    assert accepted.id < opened[0].id  # the claim was written before the door's opening
    assert outbox(controller.db, "door.opened")[-1].data == {
        "compartment": deposited["compartment"], "reason": "pickup", "parcel_id": deposited["parcel_id"]}
    assert CODE_ATTEMPTS.labels("accepted")._value.get() == accepted_before + 1  # counted once committed


def test_a_claimed_door_that_does_not_open_keeps_the_parcel_stored(controller, client, courier, sim):
    spec, deposited = deposit_parcel(controller, client, courier, sim)
    sim.jam(spec.board, spec.lock)

    reply = client.post("/api/locker/pickup", json={"code": deposited["pickup_code"]})

    assert reply.status_code == 409 and reply.json["error"]["code"] == "door_not_opened", reply.json
    with controller.db.read() as s:
        [op] = s.scalars(select(DoorOperation).where(DoorOperation.parcel_id == deposited["parcel_id"])).all()
        assert op.state == "not_opened" and op.closed_at is not None
        assert s.get(Parcel, deposited["parcel_id"]).state == "stored"
        assert s.get(Compartment, deposited["compartment"]).fault is not None
    failed = [a for a in audits(controller.db, "door_open") if a.detail.get("reason") == "pickup"]
    assert [(a.actor, a.result) for a in failed] == [("resident", "failed")]
    assert outbox(controller.db, "door.fault")[-1].data["compartment"] == deposited["compartment"]


def test_the_raw_audit_row_reads_back_like_the_orm_one(controller, fake_clock):
    db = controller.db
    with db.claim() as transaction:
        audit_now(transaction, Actor.RESIDENT, "pickup_code", "accepted", target="p-1",
                  detail={"kiosk": "k", "n": 1}, clock=fake_clock)
    with db.write() as s:
        audit(s, Actor.RESIDENT, "pickup_code", "accepted", target="p-1", detail={"kiosk": "k", "n": 1},
              clock=fake_clock)
    with db.read() as s:
        raw, orm = s.scalars(select(AuditEntry).where(AuditEntry.target == "p-1").order_by(AuditEntry.id)).all()
    fields = ("ts", "actor", "actor_id", "action", "target", "result", "detail")
    assert [getattr(raw, f) for f in fields] == [getattr(orm, f) for f in fields]
    assert raw.ts.tzinfo is not None


def test_a_claim_rolls_back_as_a_unit_and_never_nests_in_a_write(controller, fake_clock):
    db = controller.db
    with pytest.raises(ValueError):
        with db.claim() as transaction:
            audit_now(transaction, Actor.SYSTEM, "probe", "written", target="rolled-back", clock=fake_clock)
            raise ValueError("after the insert")
    with db.read() as s:
        assert s.scalars(select(AuditEntry).where(AuditEntry.target == "rolled-back")).all() == []
    with db.write(), pytest.raises(RuntimeError):
        with db.claim():
            pass
    with db.claim() as transaction:  # the turn was given back both times
        audit_now(transaction, Actor.SYSTEM, "probe", "written", target="kept", clock=fake_clock)
    db.sync_soon().result(5)
    with db.read() as s:
        assert [a.result for a in s.scalars(select(AuditEntry).where(AuditEntry.target == "kept"))] == ["written"]
