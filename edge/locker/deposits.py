"""Deposits: a courier logs in, a free working compartment of the parcel's size opens, and
the parcel is stored (with its pickup code issued once) when the door closes on an item."""
from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol, get_args

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from edge.clock import iso_utc
from edge.drivers.lockboard.base import Latch, LockState
from edge.locker.codes import PickupCodes
from edge.locker.doors import Doors, Pending, new_id
from edge.locker.errors import (
    DoorDidNotOpen,
    InvalidInput,
    NoFreeCompartment,
    NoPlatformKey,
    NotFound,
    WaybillInLocker,
    WrongState,
)
from edge.locker.models import Compartment, Deposit, Parcel
from edge.locker.views import LIVE_DEPOSIT_STATES, LIVE_PARCEL_STATES, DepositView, Station
from edge.privacy import InvalidPhone, mask_phone, normalise_phone
from edge.settings import Size
from edge.storage import Actor, audit, record_event

SIZES: tuple[str, ...] = get_args(Size)  # ("S", "M", "L"), as the layout settings allow
WAYBILL_MAX = 64  # characters of a waybill number
# Waybill numbers as couriers' labels print them: ASCII letters and digits (some carriers add
# hyphens); compared in upper case, so "sf123" and "SF123" are one waybill.
WAYBILL_PATTERN = re.compile(r"[A-Z0-9](?:[A-Z0-9-]*[A-Z0-9])?")
MAX_DOORS_TRIED = 3  # per deposit: a courier should not stand there while every door fails


class PickupTokens(Protocol):
    """edge.identity.tokens.PickupTokenCodec, as far as the locker uses it."""

    def issue(self, parcel_id: str, compartment: str | int, expires_at: datetime) -> str: ...
    def verify(self, token: str, now: datetime, *, already_used: Callable[[str], bool] | None = None) -> Any: ...


class Deposits:
    """Owns the deposit rows: courier log-in, choosing and opening a compartment (up to
    three doors), reopen, cancel, a door reported not opened, and the parcel stored when
    the door closes on an item. Door openings go through the shared `Doors`."""

    def __init__(self, doors: Doors, codes: PickupCodes, tokens: PickupTokens | None,
                 phone_hash: Callable[[str], str],
                 seal_secret: Callable[[dict[str, Any], str], str] | None = None,
                 station: Station | None = None) -> None:
        self._doors = doors
        self._station = station or Station("", "")
        self._codes = codes
        self._tokens = tokens
        self._phone_hash = phone_hash
        # (secret, message_id) -> sealed text for the platform (edge.identity.sealing); without
        # it a pickup code could not reach the resident, so deposits are refused.
        self._seal_secret = seal_secret
        doors.add_follow_up(self.follow_up)

    def status(self, deposit_id: str, courier_id: str | None = None) -> DepositView:
        """A deposit's state; with `courier_id`, only that courier's deposit is found."""
        with self._doors.db.read() as s:
            deposit = find_deposit(s, deposit_id)
            if courier_id is not None and deposit.courier_id != courier_id:
                raise NotFound("no deposit with that id")
            return deposit_view(deposit)

    def start(self, courier_id: str, waybill: str, phone: str, size: str) -> DepositView:
        """Choose a free working compartment of `size` and open it for the courier."""
        waybill = clean_waybill(waybill)
        try:
            phone = normalise_phone(phone)
        except InvalidPhone as exc:
            raise InvalidInput("bad_phone", str(exc)) from None
        if size not in SIZES:
            raise InvalidInput("bad_size", "size must be S, M or L")
        if self._seal_secret is None:
            raise NoPlatformKey("deposits need the platform's key (mqtt.platform_public_key) "
                                "to send the pickup code sealed")
        now = self._doors.clock.now()
        with self._doors.lock:
            self._refuse_live_waybill(courier_id, waybill)
            deposit = Deposit(
                id=new_id("dep"), courier_id=courier_id, waybill=waybill,
                phone_masked=mask_phone(phone), phone_hash=self._phone_hash(phone),
                size=size, compartment=0, state="opening", message="", created_at=now, updated_at=now,
            )
            return self._open_door(deposit, first=None, tried=[])

    def check_waybill(self, courier_id: str, raw: str) -> str:
        """The waybill cleaned, or the refusal (malformed, or already live in this locker):
        the courier screen asks before the phone and size steps."""
        waybill = clean_waybill(raw)
        with self._doors.lock:
            self._refuse_live_waybill(courier_id, waybill)
        return waybill

    def _refuse_live_waybill(self, courier_id: str, waybill: str) -> None:
        """One waybill, one parcel in this locker: the same label deposited twice is a
        courier's slip (or a parcel split without new labels) that the resident would pay for
        with two codes and one empty door."""
        doors = self._doors
        with doors.db.read() as s:
            live = s.scalar(select(Parcel.compartment).where(
                Parcel.waybill == waybill, Parcel.state.in_(LIVE_PARCEL_STATES)).limit(1))
            if live is None:
                live = s.scalar(select(Deposit.compartment).where(
                    Deposit.waybill == waybill, Deposit.state.in_(LIVE_DEPOSIT_STATES)).limit(1))
        if live is None:
            return
        with doors.db.write() as s:
            audit(s, Actor.COURIER, "deposit", "refused_waybill_in_locker", actor_id=courier_id,
                  detail={"waybill": waybill, "compartment": live}, clock=doors.clock)
        raise WaybillInLocker(waybill, live)

    def cancel(self, deposit_id: str) -> DepositView:
        doors = self._doors
        with doors.lock:
            pending = Pending()
            with doors.db.write() as s:
                deposit = find_deposit(s, deposit_id)
                if deposit.state not in LIVE_DEPOSIT_STATES:
                    raise WrongState(f"this deposit is already {deposit.state}")
                end_deposit(deposit, "cancelled",
                            "cancelled by the courier; take the item out and close the door", doors.clock.now())
                audit(s, Actor.COURIER, "deposit_cancel", "ok", actor_id=deposit.courier_id,
                      target=deposit.id, detail={"compartment": deposit.compartment}, clock=doors.clock)
                pending.add("deposit.cancelled",
                            {"deposit_id": deposit.id, "compartment": deposit.compartment})
                view = deposit_view(deposit)
        doors.notify(pending)
        return view

    def reopen(self, deposit_id: str) -> DepositView:
        """Open again a door the courier closed before an item was seen inside."""
        with self._doors.lock:
            with self._doors.db.read() as s:
                deposit = find_deposit(s, deposit_id)
            if deposit.state != "empty_closed":
                raise WrongState("only a door closed with nothing inside can be reopened")
            return self._open_door(deposit, first=deposit.compartment, tried=[])

    def report_door_not_opened(self, deposit_id: str) -> DepositView:
        """The courier says the door did not open: take it out of service, open another."""
        doors = self._doors
        with doors.lock:
            pending = Pending()
            with doors.db.write() as s:
                deposit = find_deposit(s, deposit_id)
                if deposit.state not in ("door_open", "empty_closed"):
                    raise WrongState(f"this deposit is {deposit.state}")
                bad = deposit.compartment
                doors.flag_fault(s, s.get(Compartment, bad), "courier reported the door did not open",
                                 pending, attempts=0)
                audit(s, Actor.COURIER, "door_not_opened", "reported", actor_id=deposit.courier_id,
                      target=f"compartment:{bad}", detail={"deposit_id": deposit.id}, clock=doors.clock)
            doors.notify(pending)
            return self._open_door(deposit, first=None, tried=[bad])

    def _open_door(self, deposit: Deposit, first: int | None, tried: list[int]) -> DepositView:
        """Open `first`, else free compartments in turn; flag each that will not open."""
        candidate = first
        while True:
            if candidate is None:
                candidate = self._doors.choose_free(deposit.size, exclude=tried)
            if candidate is None:
                self._fail(deposit, "no free working compartment of this size" if not tried
                           else f"compartments {', '.join(map(str, tried))} did not open")
                raise (DoorDidNotOpen if tried else NoFreeCompartment)(
                    f"no free working {deposit.size} compartment could be opened")
            opened = self._try_door(deposit, candidate, tried)
            if opened is not None:
                return opened
            tried.append(candidate)
            candidate = None
            if len(tried) >= MAX_DOORS_TRIED:
                self._fail(deposit, f"compartments {', '.join(map(str, tried))} did not open")
                raise DoorDidNotOpen("three compartments in a row did not open; please call staff")

    def _try_door(self, deposit: Deposit, number: int, tried: list[int]) -> DepositView | None:
        doors = self._doors
        reopening = deposit.state == "empty_closed"
        doors.refuse_if_outbox_full()
        with doors.db.write() as s:
            row = s.merge(deposit)
            row.compartment, row.state, row.updated_at = number, "opening", doors.clock.now()
        comp = doors.layout[number]
        result = doors.unlock(comp)
        pending = Pending()
        with doors.db.write() as s:
            row = s.get(Deposit, deposit.id)
            why = "deposit_reopen" if reopening else "deposit"
            doors.audit_opening(s, Actor.COURIER, deposit.courier_id, number, why, result)
            if result.opened:
                row.state = "door_open"
                row.message = (f"compartment {number} is open"
                               + (f"; {', '.join(map(str, tried))} did not open" if tried else ""))
                row.updated_at = doors.clock.now()
                doors.mark_opened(s, number, why, pending, deposit_id=deposit.id)
                view = deposit_view(row)
            else:
                doors.record_failed_unlock(s, comp, result, pending)
                row.message = f"compartment {number} did not open"
                view = None
            deposit.state, deposit.compartment = row.state, row.compartment
        doors.notify(pending)
        return view

    def _fail(self, deposit: Deposit, message: str) -> None:
        with self._doors.db.write() as s:
            row = s.merge(deposit)
            end_deposit(row, "failed", message, self._doors.clock.now())
            audit(s, Actor.COURIER, "deposit", "failed", actor_id=deposit.courier_id,
                  target=deposit.id, detail={"message": message}, clock=self._doors.clock)

    def follow_up(self, s: Session, row: Compartment, state: LockState, pending: Pending) -> bool:
        """A live deposit's door closed (on an item or empty) or was seen open."""
        deposit = s.scalars(select(Deposit).where(Deposit.compartment == row.number,
                                                  Deposit.state.in_(LIVE_DEPOSIT_STATES))).first()
        if deposit is not None and state.latch is Latch.CLOSED:
            if state.item:
                self._confirm(s, deposit, pending)
            elif deposit.state != "empty_closed":
                end_deposit(deposit, "empty_closed",
                            "the door closed but no item was seen; reopen it or cancel", self._doors.clock.now())
                pending.add("deposit.empty_closed", {"deposit_id": deposit.id, "compartment": row.number})
            return True
        if deposit is not None and deposit.state == "opening" and state.latch is Latch.OPEN:
            end_deposit(deposit, "door_open", f"compartment {row.number} is open", self._doors.clock.now())
            return True
        return False

    def _confirm(self, s: Session, deposit: Deposit, pending: Pending) -> None:
        """Latch closed on an item: the parcel is stored and its pickup code issued (once)."""
        clock = self._doors.clock
        now = clock.now()
        code, code_hash = self._unique_code(s)
        parcel = Parcel(
            id=new_id("par"), deposit_id=deposit.id, compartment=deposit.compartment,
            size=deposit.size, waybill=deposit.waybill, courier_id=deposit.courier_id,
            phone_masked=deposit.phone_masked, phone_hash=deposit.phone_hash, code_hash=code_hash,
            state="stored", overdue=False, deposited_at=now,
            due_at=now + timedelta(hours=self._doors.settings.retention_hours), closed_at=None,
        )
        s.add(parcel)
        deposit.parcel_id = parcel.id
        end_deposit(deposit, "deposited", f"parcel stored in compartment {deposit.compartment}", clock.now())
        # The code and token exist in clear only in this frame: they leave sealed to the
        # platform, bound to the event's message id (ADR 0110); the box keeps their hashes.
        message_id = str(uuid.uuid4())
        token = self._tokens.issue(parcel.id, parcel.compartment, parcel.due_at) if self._tokens else None
        assert self._seal_secret is not None  # start_deposit refused without it
        data = {
            "parcel_id": parcel.id, "deposit_id": deposit.id, "compartment": parcel.compartment,
            "size": parcel.size, "waybill": parcel.waybill, "courier_id": parcel.courier_id,
            "phone_masked": parcel.phone_masked,
            "secret": self._seal_secret({"pickup_code": code, "pickup_token": token}, message_id),
            "deposited_at": iso_utc(now), "due_at": iso_utc(parcel.due_at),
            # what the resident's notice says: where, which door, free until when (never the code)
            "station": {"name": self._station.name, "address": self._station.address},
            "free_until": iso_utc(now + timedelta(hours=self._doors.settings.free_storage_hours)),
        }
        del code, token
        record_event(s, "parcel.deposited", data, clock=clock, message_id=message_id)
        pending.add("parcel.deposited", data)
        audit(s, Actor.COURIER, "deposit", "deposited", actor_id=deposit.courier_id,
              target=parcel.id, detail={"compartment": parcel.compartment, "deposit_id": deposit.id},
              clock=clock)

    def _unique_code(self, s: Session) -> tuple[str, str]:
        while True:
            code = self._codes.new_code()
            digest = self._codes.digest(code)
            clash = s.scalar(select(func.count()).select_from(Parcel).where(
                Parcel.code_hash == digest, Parcel.state.in_(LIVE_PARCEL_STATES)))
            if not clash:
                return code, digest


def end_deposit(deposit: Deposit, state: str, message: str, now: datetime) -> None:
    deposit.state, deposit.message, deposit.updated_at = state, message, now


def find_deposit(s: Session, deposit_id: str) -> Deposit:
    deposit = s.get(Deposit, deposit_id)
    if deposit is None:
        raise NotFound("no deposit with that id")
    return deposit


def clean_waybill(raw: str) -> str:
    """A waybill number in upper case, or InvalidInput (letters, digits, inner hyphens)."""
    waybill = (raw or "").strip().upper()
    if not waybill.isascii() or len(waybill) > WAYBILL_MAX or not WAYBILL_PATTERN.fullmatch(waybill):
        raise InvalidInput("bad_waybill",
                           f"a waybill number has 1-{WAYBILL_MAX} letters and digits (A-Z, 0-9, inner hyphens)")
    return waybill


def deposit_view(d: Deposit) -> DepositView:
    return DepositView(d.id, d.compartment, d.size, d.state, d.message, d.parcel_id)
