"""Upkeep: settling the database with the boards at start-up, parcels past retention, and
deposits closed empty and abandoned. Run at start and by the minute jobs, not by people."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from edge.clock import iso_utc
from edge.drivers.lockboard.base import UNKNOWN_LOCK, BoardStatus, Latch, LockState
from edge.locker.code_claims import OPENING
from edge.locker.deposits import end_deposit
from edge.locker.doors import Doors, Pending
from edge.locker.models import Compartment, Deposit, DoorOperation, Parcel
from edge.locker.views import LIVE_DEPOSIT_STATES
from edge.logs import get_logger
from edge.storage import Actor, audit, record_event

log = get_logger("edge.locker")


class Upkeep:
    """Owns what no person starts: start-up reconciliation (the live door picture and the
    rows left by a crash or power loss), parcel.overdue, and abandoned deposits."""

    def __init__(self, doors: Doors) -> None:
        self._doors = doors

    def overdue_parcels(self, company: str | None = None) -> list[dict[str, Any]]:
        """Stored parcels past retention; with `company`, only that courier company's."""
        with self._doors.db.read() as s:
            rows = s.scalars(select(Parcel).where(Parcel.state == "stored", Parcel.overdue)
                             .order_by(Parcel.due_at)).all()
        if company is not None:
            rows = [p for p in rows if self._doors.settings.company_of(p.courier_id) == company]
        return [{"parcel_id": p.id, "compartment": p.compartment, "waybill": p.waybill,
                 "courier_id": p.courier_id, "phone_masked": p.phone_masked,
                 "deposited_at": iso_utc(p.deposited_at), "due_at": iso_utc(p.due_at)} for p in rows]

    def returns_for(self, courier_id: str) -> list[dict[str, Any]]:
        """What a courier may take back here: parcels refused at the door that this courier
        brought, then every overdue parcel."""
        with self._doors.db.read() as s:
            refused = s.scalars(select(Parcel).where(Parcel.state == "refused", Parcel.courier_id == courier_id)
                                .order_by(Parcel.deposited_at)).all()
        return [{"parcel_id": p.id, "compartment": p.compartment, "waybill": p.waybill, "why": "refused",
                 "reason": p.refusal_reason} for p in refused] + [
            {**row, "why": "overdue"} for row in self.overdue_parcels()]

    def check_retention(self) -> int:
        """Mark parcels past retention overdue (parcel.overdue once each); returns how many."""
        doors = self._doors
        now = doors.clock.now()
        pending = Pending()
        with doors.lock, doors.db.write() as s:
            for parcel in s.scalars(select(Parcel).where(Parcel.state == "stored",
                                                         Parcel.overdue.is_(False), Parcel.due_at <= now)):
                parcel.overdue = True
                data = {"parcel_id": parcel.id, "compartment": parcel.compartment,
                        "waybill": parcel.waybill, "courier_id": parcel.courier_id,
                        "deposited_at": iso_utc(parcel.deposited_at), "due_at": iso_utc(parcel.due_at)}
                record_event(s, "parcel.overdue", data, clock=doors.clock)
                pending.add("parcel.overdue", data)
        doors.notify(pending)
        return len(pending.items)

    def expire_abandoned_deposits(self) -> int:
        """Cancel deposits closed empty and left so longer than deposit_close_timeout_s."""
        doors = self._doors
        cutoff = doors.clock.now() - timedelta(seconds=doors.settings.deposit_close_timeout_s)
        with doors.lock, doors.db.write() as s:
            stale = s.scalars(select(Deposit).where(Deposit.state == "empty_closed",
                                                    Deposit.updated_at <= cutoff)).all()
            for deposit in stale:
                end_deposit(deposit, "cancelled", "closed empty and abandoned", doors.clock.now())
                audit(s, Actor.SYSTEM, "deposit_cancel", "timeout", target=deposit.id, clock=doors.clock)
        return len(stale)

    def reconcile(self) -> list[dict[str, Any]]:
        """Read every board and settle the DB with what is physically there (after a power
        loss or a crash). Returns the findings, which are also audited and sent as
        locker.reconciled."""
        doors = self._doors
        findings: list[dict[str, Any]] = []
        pending = Pending()
        with doors.lock:
            for board in doors.boards:
                status = doors.read(board)
                if not status.reachable:
                    findings.append({"finding": "board_unreachable", "board": board, "error": status.error})
                findings.extend(self._reconcile_board(status, pending))
            with doors.db.write() as s:
                if findings:
                    record_event(s, "locker.reconciled", {"findings": findings}, clock=doors.clock)
                audit(s, Actor.SYSTEM, "reconcile", "changes" if findings else "clean",
                      detail={"findings": findings}, clock=doors.clock)
        doors.notify(pending)
        log.info("locker_reconciled", findings=len(findings))
        return findings

    def _reconcile_board(self, status: BoardStatus, pending: Pending) -> list[dict[str, Any]]:
        doors = self._doors
        on_board = [n for n, spec in doors.layout.items() if spec.board == status.board]
        doors.live.update({n: UNKNOWN_LOCK for n in on_board})
        if not status.reachable:
            doors.reachable[status.board] = False
            return []
        found: list[dict[str, Any]] = []
        with doors.db.read() as s:
            before = {d.compartment: d.state for d in s.scalars(
                select(Deposit).where(Deposit.state.in_(LIVE_DEPOSIT_STATES)))}
            ops = {o.compartment: o.purpose for o in s.scalars(
                select(DoorOperation).where(DoorOperation.state.in_(("door_open", OPENING))))}
            rows = {r.number: r.latch for r in s.scalars(select(Compartment))}
        doors.live.update({n: LockState(Latch(rows.get(n, "closed")), None) for n in on_board})
        doors.reachable[status.board] = True
        # Re-applying the stored latch first makes apply() compare against what the DB saw.
        doors.apply(status, pending, reason="found_at_start")
        with doors.db.write() as s:
            for n in on_board:
                state = status.locks[doors.layout[n].lock]
                doors.check_after_restart(s, n, state, pending)  # e.g. a pickup claimed, not yet opened
                found.extend(self._settle_after_restart(s, n, state, before.get(n), ops.get(n), rows.get(n)))
        return found

    def _settle_after_restart(self, s: Session, n: int, state: LockState, deposit_before: str | None,
                              op_before: str | None, latch_before: str | None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        if latch_before != state.latch.value:
            found.append({"finding": f"door_{state.latch.value}", "compartment": n,
                          "was": latch_before})
        deposit = s.scalars(select(Deposit).where(Deposit.compartment == n,
                                                  Deposit.state.in_(LIVE_DEPOSIT_STATES))).first()
        if deposit_before is not None:
            after = s.scalars(select(Deposit).where(Deposit.compartment == n)
                              .order_by(Deposit.updated_at.desc())).first()
            if deposit is not None and state.latch is Latch.CLOSED:
                # A closed, empty door with no courier left at the screen: nothing to keep open.
                end_deposit(deposit, "cancelled", "closed empty before the controller restarted",
                            self._doors.clock.now())
                after = deposit
            found.append({"finding": "deposit_after_restart", "compartment": n,
                          "deposit_id": after.id if after else None, "was": deposit_before,
                          "now": after.state if after else None})
        if op_before is not None:
            found.append({"finding": f"{op_before}_after_restart", "compartment": n,
                          "latch": state.latch.value})
        parcel = s.scalars(select(Parcel).where(Parcel.compartment == n, Parcel.state == "stored")).first()
        if parcel is not None and state.latch is Latch.CLOSED and state.item is False:
            found.append({"finding": "item_missing", "compartment": n, "parcel_id": parcel.id})
            audit(s, Actor.SYSTEM, "item_missing", "seen", target=parcel.id,
                  detail={"compartment": n}, clock=self._doors.clock)
        return found
