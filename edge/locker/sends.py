"""Sending (寄件): a resident identified (any assurance level) or holding a send code from the
courier company's app picks a company and a size; a free door opens, the parcel goes in, the
door closes (`parcel.send_deposited`). A courier of that company later takes it out from the
courier screen (`parcel.send_collected`).

Send-outs are refused while the camera covering the locker does not give a picture: the
regulation asks that nobody sends through an unwatched locker.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from edge.clock import iso_utc
from edge.drivers.lockboard.base import Latch, LockState, UnlockResult
from edge.locker.codes import PickupCodes
from edge.locker.doors import Doors, Pending, new_id
from edge.locker.errors import (
    BoardUnreachable,
    CameraUnhealthy,
    DoorDidNotOpen,
    InvalidInput,
    LockerError,
    NoFreeCompartment,
    NotFound,
    WrongState,
)
from edge.locker.models import Compartment, Send
from edge.locker.views import SendView
from edge.storage import Actor, AuditEntry, StorageFull, audit, record_event

SEND_CODE = re.compile(r"[A-Za-z0-9]{4,32}")
SIZES = ("S", "M", "L")  # smallest first: a retry may move up to a larger door, never down
MAX_DOORS_TRIED = 2  # the chosen door and one more, tried at once (ADR 0138)
# A send in these states did not use its send code: the resident may type it again.
UNUSED_CODE_STATES = ("failed", "cancelled")
# None when the camera covering the locker gives a picture, else why not (plain words).
CameraCheck = Callable[[], str | None]


class SendCodeUsed(LockerError):
    """A send code that already sent a parcel (a door opened for it)."""

    code = "send_code_used"


class Sends:
    """Owns the send rows: opening a door for an outgoing parcel, storing it when the door
    closes on it, and the collecting courier's door."""

    def __init__(self, doors: Doors, codes: PickupCodes, camera_check: CameraCheck | None) -> None:
        self._doors = doors
        self._codes = codes
        self._camera_check = camera_check
        doors.add_follow_up(self.follow_up)

    def start(self, company: str, size: str, *, send_code: str | None = None,
              resident_id: str | None = None) -> SendView:
        """Open a free door of `size` for an outgoing parcel. A door that does not open is
        flagged (as deposits do) and one more is tried at once: the same size, else the next
        larger; on a silent board, a door on another board. When neither opens, the send ends
        `failed` and its send code stays usable (ADR 0138)."""
        doors = self._doors
        sender, code_hash = self._sender(send_code, resident_id)
        if company not in doors.settings.send_companies:
            raise InvalidInput("unknown_company", "choose one of this station's courier companies")
        if size not in SIZES:
            raise InvalidInput("bad_size", "size must be S, M or L")
        self._refuse_without_camera(sender)
        with doors.lock:
            if code_hash is not None:
                self._refuse_used_code(code_hash)
            number = doors.choose_free(size, exclude=[])
            if number is None:
                raise NoFreeCompartment(f"no free working {size} compartment for sending")
            doors.refuse_if_outbox_full()
            now = doors.clock.now()
            send = Send(id=new_id("snd"), company=company, size=size, compartment=number, sender=sender,
                        send_code_hash=code_hash, state="opening", collector_id=None, created_at=now,
                        deposited_at=None, collected_at=None)
            with doors.db.write() as s:
                s.add(send)
            return self._open_for_send(send.id, size, number, sender)

    def _open_for_send(self, send_id: str, size: str, number: int, sender: str) -> SendView:
        """The chosen door, and at most one more when it does not open."""
        doors = self._doors
        tried: list[tuple[int, UnlockResult]] = []
        while True:
            view, result = self._unlock_for(send_id, number, Actor.RESIDENT, sender, "send", "door_open")
            if view is not None:
                return self.status(send_id) if tried else view
            tried.append((number, result))
            retry = None if len(tried) >= MAX_DOORS_TRIED else self._another_door(size, tried)
            if retry is None:
                raise self._fail(send_id, sender, tried)
            try:
                doors.refuse_if_outbox_full()
            except StorageFull:  # the send must not stay `opening` and hold its compartment
                self._fail(send_id, sender, tried)
                raise
            with doors.db.write() as s:
                s.get(Send, send_id).compartment = retry
            number = retry

    def _another_door(self, size: str, tried: list[tuple[int, UnlockResult]]) -> int | None:
        """A free working door of `size`, else of the next larger size; never a door tried,
        nor one on a board that did not answer."""
        doors = self._doors
        exclude = {n for n, _ in tried}
        for n, result in tried:
            if result.state.latch is Latch.UNKNOWN:
                board = doors.layout[n].board
                exclude |= {m for m, spec in doors.layout.items() if spec.board == board}
        for candidate_size in SIZES[SIZES.index(size):]:
            number = doors.choose_free(candidate_size, exclude=sorted(exclude))
            if number is not None:
                return number
        return None

    def _fail(self, send_id: str, sender: str, tried: list[tuple[int, UnlockResult]]) -> LockerError:
        """No door opened: the send ends `failed` (its code was never used), audited."""
        doors = self._doors
        numbers = [n for n, _ in tried]
        jammed = [n for n, r in tried if r.state.latch is Latch.CLOSED]
        silent = [n for n, r in tried if r.state.latch is Latch.UNKNOWN]
        with doors.db.write() as s:
            s.get(Send, send_id).state = "failed"
            audit(s, Actor.RESIDENT, "send", "failed", actor_id=sender, target=send_id,
                  detail={"not_opened": numbers, "jammed": jammed, "board_silent": silent},
                  clock=doors.clock)
        doors_words = " and ".join(map(str, numbers))
        if not jammed:
            return BoardUnreachable(f"the locker board is not answering (door {doors_words}); your send "
                                    "code still works; please call staff", not_opened=numbers, send_id=send_id)
        return DoorDidNotOpen(f"door {doors_words} did not open; staff have been told; your send code "
                              "still works", not_opened=numbers, send_id=send_id)

    def _refuse_used_code(self, code_hash: str) -> None:
        """A send code sends one parcel: once a door opened for it, it is used. A send that
        failed or was closed empty did not use it."""
        doors = self._doors
        with doors.db.read() as s:
            used = s.scalar(select(Send.id).where(Send.send_code_hash == code_hash,
                                                  Send.state.notin_(UNUSED_CODE_STATES)).limit(1))
        if used is None:
            return
        with doors.db.write() as s:
            audit(s, Actor.RESIDENT, "send", "refused_code_used", actor_id="code", target=used, clock=doors.clock)
        raise SendCodeUsed("that send code has already sent a parcel")

    def collect(self, courier_id: str, send_id: str) -> SendView:
        """Open an outgoing parcel's door for a courier of its company."""
        doors = self._doors
        with doors.lock:
            with doors.db.read() as s:
                send = s.get(Send, send_id)
            if send is None or send.company != self.company_of(courier_id):
                raise NotFound("no outgoing parcel with that id for your company")
            if send.state != "deposited":
                raise WrongState(f"this outgoing parcel is {send.state}")
            doors.refuse_if_outbox_full()
            with doors.db.write() as s:
                s.get(Send, send_id).collector_id = courier_id
            view, result = self._unlock_for(send_id, send.compartment, Actor.COURIER, courier_id,
                                            "send_collect", "collect_open")
            if view is None:  # the parcel stays deposited; the courier may try again later
                raise doors.unlock_error(result)
            return view

    def waiting_for(self, courier_id: str) -> list[SendView]:
        """Outgoing parcels in the locker for this courier's company."""
        with self._doors.db.read() as s:
            rows = s.scalars(select(Send).where(Send.state == "deposited",
                                                Send.company == self.company_of(courier_id))
                             .order_by(Send.deposited_at)).all()
        return [send_view(x) for x in rows]

    def status(self, send_id: str) -> SendView:
        """A send's state, with the doors that did not open for it (from its audited openings)."""
        with self._doors.db.read() as s:
            send = s.get(Send, send_id)
            if send is None:
                raise NotFound("no outgoing parcel with that id")
            failed = s.scalars(select(AuditEntry).where(
                AuditEntry.action == "door_open", AuditEntry.result == "failed",
                AuditEntry.ts >= send.created_at).order_by(AuditEntry.id)).all()
            not_opened = tuple(int(a.target.split(":")[1]) for a in failed
                               if a.detail.get("send_id") == send_id and a.detail.get("reason") == "send")
            return send_view(send, not_opened)

    def company_of(self, courier_id: str) -> str:
        return self._doors.settings.company_of(courier_id)

    def _sender(self, send_code: str | None, resident_id: str | None) -> tuple[str, str | None]:
        if resident_id:
            return f"resident:{resident_id}"[:64], None
        if send_code is None or not SEND_CODE.fullmatch(send_code):
            raise InvalidInput("bad_send_code", "a send code from the courier's app has 4-32 letters and digits")
        return "code", self._codes.digest(send_code.upper())

    def _refuse_without_camera(self, sender: str) -> None:
        problem = "no camera covers this locker" if self._camera_check is None else self._camera_check()
        if problem is None:
            return
        with self._doors.db.write() as s:
            audit(s, Actor.RESIDENT, "send", "refused_camera", actor_id=sender, detail={"camera": problem},
                  clock=self._doors.clock)
        raise CameraUnhealthy(f"sending is closed while the locker camera does not work ({problem})")

    def _unlock_for(self, send_id: str, number: int, actor: Actor, actor_id: str, why: str,
                    opened_state: str) -> tuple[SendView | None, UnlockResult]:
        """Unlock one door for a send; on failure the send row is left as it was (the caller
        decides), a jammed latch is flagged as a fault with the send's id in door.fault."""
        doors = self._doors
        comp = doors.layout[number]
        result = doors.unlock(comp)
        pending = Pending()
        view = None
        with doors.db.write() as s:
            send = s.get(Send, send_id)
            doors.audit_opening(s, actor, actor_id, number, why, result, send_id=send_id)
            if result.opened:
                send.state = opened_state
                doors.mark_opened(s, number, why, pending, send_id=send_id)
                view = send_view(send)
            else:
                doors.record_failed_unlock(s, comp, result, pending, during=why, send_id=send_id)
        doors.notify(pending)
        return view, result

    def follow_up(self, s: Session, row: Compartment, state: LockState, pending: Pending) -> bool:
        send = s.scalars(select(Send).where(Send.compartment == row.number,
                                            Send.state.in_(("door_open", "collect_open")))).first()
        if send is None or state.latch is not Latch.CLOSED and not (
                send.state == "collect_open" and state.item is False):
            return False
        now = self._doors.clock.now()
        if send.state == "door_open":
            self._stored_or_cancelled(s, send, bool(state.item), pending)
        elif state.item is False:
            send.state, send.collected_at = "collected", now
            data = {"send_id": send.id, "compartment": send.compartment, "company": send.company,
                    "courier_id": send.collector_id, "collected_at": iso_utc(now)}
            record_event(s, "parcel.send_collected", data, clock=self._doors.clock)
            pending.add("parcel.send_collected", data)
            audit(s, Actor.COURIER, "send_collect", "collected", actor_id=send.collector_id, target=send.id,
                  detail={"compartment": send.compartment, "company": send.company}, clock=self._doors.clock)
        else:  # the door closed with the parcel still inside: it waits for the next collection
            send.state = "deposited"
        return True

    def _stored_or_cancelled(self, s: Session, send: Send, item: bool, pending: Pending) -> None:
        now = self._doors.clock.now()
        if not item:
            send.state = "cancelled"
            audit(s, Actor.RESIDENT, "send", "closed_empty", actor_id=send.sender, target=send.id,
                  detail={"compartment": send.compartment}, clock=self._doors.clock)
            return
        send.state, send.deposited_at = "deposited", now
        data = {"send_id": send.id, "compartment": send.compartment, "company": send.company,
                "size": send.size, "by": "code" if send.sender == "code" else "resident",
                "deposited_at": iso_utc(now)}
        record_event(s, "parcel.send_deposited", data, clock=self._doors.clock)
        pending.add("parcel.send_deposited", data)
        audit(s, Actor.RESIDENT, "send", "deposited", actor_id=send.sender, target=send.id,
              detail={"compartment": send.compartment, "company": send.company}, clock=self._doors.clock)


def send_view(send: Send, not_opened: tuple[int, ...] = ()) -> SendView:
    message = ""
    if not_opened:
        tried = " and ".join(map(str, not_opened))
        message = (f"door {tried} did not open; use door {send.compartment}" if send.state != "failed"
                   else f"door {tried} did not open")
    return SendView(send.id, send.company, send.compartment, send.size, send.state, message, not_opened)
