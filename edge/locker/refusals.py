"""Refusal at the door: after a pickup door opens, the resident may refuse the parcel
(damaged, wrong, short). It stays in, or goes back in, the door closes, and the parcel is
`refused`: it waits in its compartment for the courier who brought it (`parcel.refused`).

A parcel the item sensor already saw leave can still be refused for a short while after
(the resident inspects it in hand): its door opens again if it has closed. A door that will
not open for that is a fault and the refusal is refused in plain words; the parcel stays
collected, as it is in the resident's hands.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from edge.clock import iso_utc
from edge.drivers.lockboard.base import Latch, LockState
from edge.locker.doors import Doors, Pending
from edge.locker.errors import InvalidInput, NotFound, WrongState
from edge.locker.models import Compartment, DoorOperation, Parcel
from edge.locker.views import PickupView
from edge.storage import Actor, audit, record_event

REFUSAL_REASONS = ("damaged", "wrong", "short")
# How long after the item left a resident may still refuse (the parcel is in their hands).
REFUSE_AFTER_COLLECTION = timedelta(minutes=3)


class Refusals:
    """Owns the refusing step of a pickup door operation and its end when the door closes."""

    def __init__(self, doors: Doors) -> None:
        self._doors = doors
        doors.add_follow_up(self.follow_up)

    def refuse(self, pickup_id: str, reason: str) -> PickupView:
        if reason not in REFUSAL_REASONS:
            raise InvalidInput("bad_reason", f"a refusal reason is one of {', '.join(REFUSAL_REASONS)}")
        doors = self._doors
        with doors.lock:
            with doors.db.read() as s:
                op = s.get(DoorOperation, pickup_id)
                if op is None or op.purpose != "pickup":
                    raise NotFound("no pickup with that id")
                self._check_refusable(op)
            door_open = doors.live.get(op.compartment) is not None and \
                doors.live[op.compartment].latch is Latch.OPEN
            if not door_open:
                self._reopen(op, reason)
            pending = Pending()
            with doors.db.write() as s:
                op = s.get(DoorOperation, pickup_id)
                parcel = s.get(Parcel, op.parcel_id)
                op.state, op.closed_at = "refusing", None
                parcel.state, parcel.closed_at, parcel.refusal_reason = "refusing", None, reason
                audit(s, Actor.RESIDENT, "refusal", "requested", target=parcel.id,
                      detail={"compartment": op.compartment, "reason": reason, "pickup_id": op.id,
                              "door_reopened": not door_open}, clock=doors.clock)
                pending.add("parcel.refusing", {"parcel_id": parcel.id, "compartment": op.compartment})
                view = PickupView(op.id, op.parcel_id, op.compartment, op.purpose, op.state)
            doors.notify(pending)
        return view

    def _check_refusable(self, op: DoorOperation) -> None:
        if op.state in ("door_open", "refusing"):
            return
        if op.state == "collected" and op.closed_at is not None \
                and self._doors.clock.now() - op.closed_at <= REFUSE_AFTER_COLLECTION:
            return
        raise WrongState("this parcel can no longer be refused here; please contact the courier")

    def _reopen(self, op: DoorOperation, reason: str) -> None:
        """Open the door again so the parcel can go back in; a door that will not open is a fault."""
        doors = self._doors
        doors.refuse_if_outbox_full()
        comp = doors.layout[op.compartment]
        result = doors.unlock(comp)
        pending = Pending()
        with doors.db.write() as s:
            doors.audit_opening(s, Actor.RESIDENT, None, comp.number, "refusal", result, parcel_id=op.parcel_id)
            if result.opened:
                doors.mark_opened(s, comp.number, "refusal", pending, parcel_id=op.parcel_id)
            else:
                doors.record_failed_unlock(s, comp, result, pending)
                audit(s, Actor.RESIDENT, "refusal", "door_not_opened", target=op.parcel_id,
                      detail={"compartment": comp.number, "reason": reason}, clock=doors.clock)
        doors.notify(pending)
        if not result.opened:
            raise doors.unlock_error(result)

    def follow_up(self, s: Session, row: Compartment, state: LockState, pending: Pending) -> bool:
        """A refusing door closed: with the parcel inside it is refused; empty, the resident
        kept it after all (collected, as the item sensor said)."""
        op = s.scalars(select(DoorOperation).where(DoorOperation.compartment == row.number,
                                                   DoorOperation.state == "refusing")).first()
        if op is None or state.latch is not Latch.CLOSED:
            return op is not None  # still open: nothing ends, and no pickup follow-up either
        clock = self._doors.clock
        now = clock.now()
        parcel = s.get(Parcel, op.parcel_id)
        if not state.item:
            op.state, op.closed_at = "collected", now
            parcel.state, parcel.closed_at = "collected", now
            audit(s, Actor.RESIDENT, "refusal", "withdrawn", target=parcel.id,
                  detail={"compartment": parcel.compartment, "reason": parcel.refusal_reason}, clock=clock)
            return True
        op.state, op.closed_at = "refused", now
        parcel.state, parcel.closed_at = "refused", None
        data = {"parcel_id": parcel.id, "compartment": parcel.compartment, "waybill": parcel.waybill,
                "courier_id": parcel.courier_id, "reason": parcel.refusal_reason, "refused_at": iso_utc(now)}
        record_event(s, "parcel.refused", data, clock=clock)
        pending.add("parcel.refused", data)
        audit(s, Actor.RESIDENT, "refusal", "refused", target=parcel.id,
              detail={"compartment": parcel.compartment, "reason": parcel.refusal_reason,
                      "waybill": parcel.waybill, "courier_id": parcel.courier_id}, clock=clock)
        return True
