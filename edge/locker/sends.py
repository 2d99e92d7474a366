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
from edge.drivers.lockboard.base import Latch, LockState
from edge.locker.codes import PickupCodes
from edge.locker.doors import Doors, Pending, new_id
from edge.locker.errors import CameraUnhealthy, InvalidInput, NoFreeCompartment, NotFound, WrongState
from edge.locker.models import Compartment, Send
from edge.locker.views import SendView
from edge.storage import Actor, audit, record_event

SEND_CODE = re.compile(r"[A-Za-z0-9]{4,32}")
SIZES = ("S", "M", "L")
# None when the camera covering the locker gives a picture, else why not (plain words).
CameraCheck = Callable[[], str | None]


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
        doors = self._doors
        sender, code_hash = self._sender(send_code, resident_id)
        if company not in doors.settings.send_companies:
            raise InvalidInput("unknown_company", "choose one of this station's courier companies")
        if size not in SIZES:
            raise InvalidInput("bad_size", "size must be S, M or L")
        self._refuse_without_camera(sender)
        with doors.lock:
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
            return self._open(send.id, number, Actor.RESIDENT, sender, "send", "door_open", "failed")

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
            return self._open(send_id, send.compartment, Actor.COURIER, courier_id, "send_collect",
                              "collect_open", "deposited")

    def waiting_for(self, courier_id: str) -> list[SendView]:
        """Outgoing parcels in the locker for this courier's company."""
        with self._doors.db.read() as s:
            rows = s.scalars(select(Send).where(Send.state == "deposited",
                                                Send.company == self.company_of(courier_id))
                             .order_by(Send.deposited_at)).all()
        return [send_view(x) for x in rows]

    def status(self, send_id: str) -> SendView:
        with self._doors.db.read() as s:
            send = s.get(Send, send_id)
        if send is None:
            raise NotFound("no outgoing parcel with that id")
        return send_view(send)

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

    def _open(self, send_id: str, number: int, actor: Actor, actor_id: str, why: str,
              opened_state: str, failed_state: str) -> SendView:
        doors = self._doors
        comp = doors.layout[number]
        result = doors.unlock(comp)
        pending = Pending()
        with doors.db.write() as s:
            send = s.get(Send, send_id)
            doors.audit_opening(s, actor, actor_id, number, why, result, send_id=send_id)
            if result.opened:
                send.state = opened_state
                doors.mark_opened(s, number, why, pending, send_id=send_id)
            else:
                send.state = failed_state
                doors.record_failed_unlock(s, comp, result, pending)
            view = send_view(send)
        doors.notify(pending)
        if not result.opened:
            raise doors.unlock_error(result)
        return view

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


def send_view(send: Send) -> SendView:
    return SendView(send.id, send.company, send.compartment, send.size, send.state)
