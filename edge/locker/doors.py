"""The shared door state: what every compartment's latch and item are, and every door opening.

Deposits, pickups and upkeep all open doors and read the live picture through one `Doors`;
it owns the lock that serialises the locker's rules, the subscribers, the unlock with its
audit row, door faults, the left-open alarm, and feeding board status reads into the rules.
Maintenance records are written by edge/locker/maintenance.py, under this lock.
"""
from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from edge.clock import Clock
from edge.drivers.lockboard.base import (
    UNKNOWN_LOCK,
    BoardStatus,
    BusError,
    Latch,
    LockBoardBus,
    LockState,
    UnlockResult,
)
from edge.locker import maintenance
from edge.locker.errors import BoardUnreachable, DoorDidNotOpen, LockerError, NotFound
from edge.locker.models import Compartment, Deposit, Parcel, Send
from edge.locker.views import (
    LIVE_DEPOSIT_STATES,
    LIVE_PARCEL_STATES,
    LIVE_SEND_STATES,
    describe_compartment,
)
from edge.logs import get_logger
from edge.settings import CompartmentSpec, LockerSettings
from edge.storage import Actor, Database, audit, record_event
from edge.storage.outbox import OutboxStats

log = get_logger("edge.locker")

Subscriber = Callable[[str, dict[str, Any]], None]
# Room an opening needs in the outbox (door.opened, door.closed, parcel.*), with margin.
ROOM_ROWS, ROOM_BYTES = 8, 16 * 1024
REDACTED = "[redacted]"


@dataclass
class Pending:
    """Subscriber notifications gathered in a transaction, sent only after it commits."""

    items: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def add(self, event_type: str, data: dict[str, Any]) -> None:
        self.items.append((event_type, redact_event(event_type, data)))


# What a compartment's latch or item change means for a deposit or a pickup in it. Returns
# True when it took the change, so the next follow-up is not asked.
FollowUp = Callable[[Session, Compartment, LockState, Pending], bool]
# What a compartment's state read at start means for work a crash left half-done (ADR 0137).
RestartCheck = Callable[[Session, int, LockState, Pending], object]


def redact_event(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """An event's data safe to show or push: sealed secrets (the pickup code and token of
    parcel.deposited, a one-time code of identity.otp_requested) only go to the outbox."""
    if "secret" not in data:
        return dict(data)
    return {**data, "secret": REDACTED}


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


class Doors:
    """The one door state the locker's parts share: the layout, the live latch/item picture
    (from unlocks and the DoorMonitor's reads), which boards answer, the left-open alarm and
    the rules lock. More than 15 public methods because deposits, pickups and upkeep each
    open doors and record the outcome through these same steps; they are the shared room."""

    def __init__(self, db: Database, bus: LockBoardBus, layout: Iterable[CompartmentSpec], clock: Clock,
                 alarm: Callable[[bool], None], settings: LockerSettings) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        # One lock serialises the rules (choosing a compartment, unlocking it, recording the
        # result), so two callers never open the same compartment for two parcels.
        self.lock = threading.RLock()
        self.layout = {spec.number: spec for spec in layout}
        self._bus = bus
        self._alarm = alarm
        self._subscribers: list[Subscriber] = []
        self._follow_ups: list[FollowUp] = []
        self._restart_checks: list[RestartCheck] = []
        self.live: dict[int, LockState] = {n: UNKNOWN_LOCK for n in self.layout}
        self.reachable: dict[int, bool] = {b: False for b in self.boards}
        self.generation = 0  # bumped by every unlock: status reads older than that are stale
        self._alarm_sounding = False
        self._sync_layout()

    # --- subscribers and follow-ups ---------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> None:
        """`callback(event_type, data)` after each committed change (pickup codes redacted)."""
        self._subscribers.append(callback)

    def add_follow_up(self, follow_up: FollowUp) -> None:
        """Asked, in the order added, what a latch or item change means for its compartment."""
        self._follow_ups.append(follow_up)

    def add_restart_check(self, check: RestartCheck) -> None:
        """Asked at start, for every compartment read, whatever changed (reconcile)."""
        self._restart_checks.append(check)

    def check_after_restart(self, s: Session, number: int, state: LockState, pending: Pending) -> None:
        for check in self._restart_checks:
            check(s, number, state, pending)

    def notify(self, pending: Pending) -> None:
        for event_type, data in pending.items:
            for callback in list(self._subscribers):
                try:
                    callback(event_type, data)
                except Exception:  # a failing listener must not undo or block a door change
                    log.exception("locker_subscriber_failed", event_type=event_type)

    # --- reading ----------------------------------------------------------------------------

    @property
    def boards(self) -> list[int]:
        return sorted({spec.board for spec in self.layout.values()})

    def compartment_location(self, number: int) -> CompartmentSpec:
        try:
            return self.layout[number]
        except KeyError:
            raise NotFound(f"there is no compartment {number}") from None

    def snapshot(self) -> list[dict[str, Any]]:
        """Every compartment as the bridge and the UI show it (phones masked, no codes)."""
        with self.db.read() as s:
            rows = s.scalars(select(Compartment).order_by(Compartment.number)).all()
            parcels = {p.compartment: p for p in s.scalars(
                select(Parcel).where(Parcel.state.in_(LIVE_PARCEL_STATES)))}
            deposits = {d.compartment: d for d in s.scalars(
                select(Deposit).where(Deposit.state.in_(LIVE_DEPOSIT_STATES)))}
            sends = {x.compartment: x for x in s.scalars(select(Send).where(Send.state.in_(LIVE_SEND_STATES)))}
        with self.lock:
            live = dict(self.live)
        return [describe_compartment(row, live.get(row.number, UNKNOWN_LOCK), parcels.get(row.number),
                                     deposits.get(row.number), sends.get(row.number))
                for row in rows if row.number in self.layout]

    def read(self, board: int) -> BoardStatus:
        try:
            return self._bus.read_board(board)
        except BusError as exc:
            return BoardStatus.unreachable(board, str(exc))

    # --- opening ----------------------------------------------------------------------------

    def refuse_if_outbox_full(self) -> None:
        """Raise StorageFull while the door is still shut: a door opened whose door.opened
        could then not be written would be an opening the cloud never hears of (ADR 0026).

        Far from the budget, one read decides. Near it, the outbox's own rule decides (it
        may drop telemetry to make room): probe events for the whole room an opening needs
        (ROOM_ROWS rows, ROOM_BYTES bytes), not one, in a transaction that is rolled back, so
        it costs no commit and uses up no seq."""
        with self.db.read() as s:
            stats = s.get(OutboxStats, 1)
            if stats is None or (stats.pending_rows + ROOM_ROWS <= stats.max_rows
                                 and stats.pending_bytes + ROOM_BYTES <= stats.max_bytes):
                return
        padding = "x" * (ROOM_BYTES // ROOM_ROWS - 64)
        with self.db.write() as s:
            try:
                for _ in range(ROOM_ROWS):
                    record_event(s, "door.opened", {"compartment": 0, "probe": padding}, clock=self.clock)
            finally:
                s.rollback()

    def unlock(self, comp: CompartmentSpec) -> UnlockResult:
        try:
            result = self._bus.unlock(comp.board, comp.lock)
        except BusError as exc:
            result = UnlockResult(comp.board, comp.lock, False, 0, UNKNOWN_LOCK, str(exc))
        self.generation += 1
        if result.opened:
            self.live[comp.number] = result.state
        return result

    @staticmethod
    def unlock_error(result: UnlockResult) -> LockerError:
        if result.state.latch is Latch.UNKNOWN:
            return BoardUnreachable("the locker board is not answering; please call staff")
        return DoorDidNotOpen("the door did not open; staff have been told")

    def audit_opening(self, s: Session, actor: Actor, actor_id: str | None, number: int, why: str,
                      result: UnlockResult, **detail: Any) -> None:
        audit(s, actor, "door_open", "opened" if result.opened else "failed", actor_id=actor_id,
              target=f"compartment:{number}",
              detail={"reason": why, "attempts": result.attempts, "error": result.error, **detail},
              clock=self.clock)

    def record_failed_unlock(self, s: Session, comp: CompartmentSpec, result: UnlockResult,
                             pending: Pending, **context: Any) -> None:
        """A latch still closed after the driver's confirmed retry is a door fault; silence is not.
        `context`: what the opening was for (e.g. a send's id), carried in door.fault."""
        if result.state.latch is Latch.CLOSED:
            self.flag_fault(s, s.get(Compartment, comp.number),
                            result.error or "latch did not open", pending, attempts=result.attempts, **context)

    def flag_fault(self, s: Session, row: Compartment, reason: str, pending: Pending, *,
                   attempts: int, **context: Any) -> None:
        row.fault, row.fault_at = reason[:200], self.clock.now()
        data = {"compartment": row.number, "board": row.board, "lock": row.lock,
                "reason": reason, "attempts": attempts, **context}
        record_event(s, "door.fault", data, clock=self.clock)
        pending.add("door.fault", data)
        log.warning("door_fault", compartment=row.number, reason=reason)

    def mark_opened(self, s: Session, number: int, reason: str, pending: Pending, **extra: Any) -> None:
        row = s.get(Compartment, number)
        row.latch, row.opened_at, row.left_open_alerted = Latch.OPEN.value, self.clock.now(), False
        data = {"compartment": number, "reason": reason, **extra}
        record_event(s, "door.opened", data, clock=self.clock)
        pending.add("door.opened", data)

    def open_plain(self, number: int, actor: Actor, actor_id: str, reason: str) -> dict[str, Any]:
        """Open a door for staff; it changes no parcel (a parcel inside stays stored)."""
        comp = self.compartment_location(number)
        with self.lock:
            self.refuse_if_outbox_full()
            result = self.unlock(comp)
            pending = Pending()
            with self.db.write() as s:
                self.audit_opening(s, actor, actor_id, number, reason, result)
                if result.opened:
                    self.mark_opened(s, number, actor.value, pending, operator=actor_id)
                else:
                    self.record_failed_unlock(s, comp, result, pending)
            self.notify(pending)
        return {"compartment": number, "opened": result.opened, "attempts": result.attempts,
                "latch": result.state.latch.value, "error": result.error}

    def clear_fault(self, number: int, who: str) -> None:
        """A technician has repaired a compartment: back in service."""
        self.compartment_location(number)
        with self.lock, self.db.write() as s:
            maintenance.clear_fault(s, number, who, self.clock)

    def set_maintenance(self, number: int, on: bool, reason: str, actor: Actor,
                        actor_id: str) -> dict[str, Any]:
        """Take a compartment out of service (never assigned again until back) or put it back."""
        self.compartment_location(number)
        reason = maintenance.clean_reason(reason, on)
        pending = Pending()
        with self.lock, self.db.write() as s:
            result = maintenance.set_maintenance(s, number, on, reason, actor, actor_id, self.clock, pending.add)
        self.notify(pending)
        return result

    def choose_free(self, size: str, exclude: list[int]) -> int | None:
        with self.db.read() as s:
            busy = set(s.scalars(select(Parcel.compartment).where(Parcel.state.in_(LIVE_PARCEL_STATES))))
            busy |= set(s.scalars(select(Deposit.compartment).where(Deposit.state.in_(LIVE_DEPOSIT_STATES))))
            busy |= set(s.scalars(select(Send.compartment).where(Send.state.in_(LIVE_SEND_STATES))))
            usable = set(s.scalars(select(Compartment.number).where(
                Compartment.enabled.is_(True), Compartment.fault.is_(None),
                Compartment.maintenance.is_(None), Compartment.size == size)))
        for n in sorted(usable - busy - set(exclude)):
            state = self.live.get(n, UNKNOWN_LOCK)
            if n in self.layout and state.latch is Latch.CLOSED and state.item is False:
                return n
        return None

    # --- status reads -----------------------------------------------------------------------

    def apply_board_status(self, status: BoardStatus, generation: int) -> None:
        """Feed one status read (taken when `generation` was current) into the rules."""
        pending = Pending()
        with self.lock:
            if generation != self.generation:
                return  # an unlock happened during the read; the next read is fresh
            self.apply(status, pending, reason="")
        self.notify(pending)

    def apply(self, status: BoardStatus, pending: Pending, reason: str) -> None:
        was_reachable = self.reachable.get(status.board, False)
        self.reachable[status.board] = status.reachable
        numbers = [n for n, spec in self.layout.items() if spec.board == status.board]
        if not status.reachable:
            for n in numbers:
                self.live[n] = UNKNOWN_LOCK
            if was_reachable:
                log.warning("board_unreachable", board=status.board, error=status.error)
                pending.add("board.unreachable", {"board": status.board, "error": status.error})
            return
        changed = [n for n in numbers if status.locks[self.layout[n].lock] != self.live.get(n)]
        if not changed:
            return
        with self.db.write() as s:
            for n in changed:
                self._on_state(s, s.get(Compartment, n), status.locks[self.layout[n].lock], pending, reason)
        for n in changed:
            self.live[n] = status.locks[self.layout[n].lock]
        if not was_reachable:
            pending.add("board.reachable", {"board": status.board})

    def _on_state(self, s: Session, row: Compartment, state: LockState, pending: Pending,
                  reason: str) -> None:
        """One compartment's latch or item changed (compared with what the DB last saw)."""
        now = self.clock.now()
        if state.latch.value != row.latch:
            if state.latch is Latch.OPEN:
                row.latch, row.opened_at, row.left_open_alerted = "open", now, False
                data = {"compartment": row.number, "reason": reason or "unexpected"}
                record_event(s, "door.opened", data, clock=self.clock)
                pending.add("door.opened", data)
                if not reason:
                    audit(s, Actor.SYSTEM, "door_opened_without_command", "seen",
                          target=f"compartment:{row.number}", clock=self.clock)
            else:
                open_s = (now - row.opened_at).total_seconds() if row.opened_at else None
                row.latch, row.opened_at = "closed", None
                data = {"compartment": row.number, "open_s": open_s, **({"reason": reason} if reason else {})}
                record_event(s, "door.closed", data, clock=self.clock)
                pending.add("door.closed", data)
                if row.left_open_alerted:
                    row.left_open_alerted = False
                    self._silence_alarm_if_all_closed(s, row.number)
        row.item = state.item
        for follow_up in self._follow_ups:
            if follow_up(s, row, state, pending):
                break

    # --- left open --------------------------------------------------------------------------

    def check_doors_left_open(self) -> None:
        """door.left_open (once per opening) and the buzzer for doors open too long."""
        now = self.clock.now()
        limit = timedelta(seconds=self.settings.door_left_open_s)
        pending = Pending()
        with self.lock:
            open_now = [n for n, st in self.live.items() if st.latch is Latch.OPEN]
            if not open_now:
                return
            # Read first: this runs on every poll while a door is open, and most passes have
            # nothing to record, so they need not take the database's write lock.
            with self.db.read() as s:
                rows = s.execute(select(Compartment.number, Compartment.opened_at,
                                        Compartment.left_open_alerted).where(
                    Compartment.number.in_(open_now), Compartment.latch == "open")).all()
            due = [number for number, opened_at, alerted in rows
                   if not alerted and opened_at is not None and now - opened_at >= limit]
            if due:
                with self.db.write() as s:
                    for row in s.scalars(select(Compartment).where(
                            Compartment.number.in_(due), Compartment.left_open_alerted.is_(False))):
                        row.left_open_alerted = True
                        data = {"compartment": row.number,
                                "open_s": round((now - row.opened_at).total_seconds(), 1)}
                        record_event(s, "door.left_open", data, clock=self.clock)
                        pending.add("door.left_open", data)
            # Also true after a restart: the buzzer's state is not in the database.
            alerted_and_open = bool(due) or any(alerted for _, _, alerted in rows)
            if alerted_and_open and not self._alarm_sounding:
                self._alarm_sounding = True
                self._alarm(True)
        self.notify(pending)

    def _silence_alarm_if_all_closed(self, s: Session, closed_now: int) -> None:
        still = s.scalar(select(func.count()).select_from(Compartment).where(
            Compartment.left_open_alerted.is_(True), Compartment.number != closed_now))
        if not still and self._alarm_sounding:
            self._alarm_sounding = False
            self._alarm(False)

    def _sync_layout(self) -> None:
        with self.db.write() as s:
            for spec in self.layout.values():
                row = s.get(Compartment, spec.number)
                if row is None:
                    s.add(Compartment(number=spec.number, board=spec.board, lock=spec.lock,
                                      size=spec.size, enabled=spec.enabled, latch="closed",
                                      item=None, opened_at=None, left_open_alerted=False))
                else:
                    row.board, row.lock, row.size, row.enabled = spec.board, spec.lock, spec.size, spec.enabled
