"""The parcel locker's rules: deposits, pickups, returns, door faults, retention, reconcile.

Every state change commits together with its outbox event and audit row. Door state comes
from the boards: the DoorMonitor feeds each status read to `apply_board_status`, and the
service decides what a latch or item change means for a deposit or a pickup.

One lock serialises the rules (choosing a compartment, unlocking it, recording the result),
so two callers never open the same compartment for two parcels.
"""
from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from edge.clock import Clock, iso_utc
from edge.drivers.lockboard.base import (
    UNKNOWN_LOCK,
    BoardStatus,
    BusError,
    Latch,
    LockBoardBus,
    LockState,
    UnlockResult,
)
from edge.community.residents import phone_hash  # the platform's name for a phone number
from edge.identity.tokens import TokenError
from edge.locker.codes import PickupCodes, normalise_code
from edge.locker.errors import (
    BoardUnreachable,
    CompartmentOutOfService,
    CoolingDown,
    DoorDidNotOpen,
    InvalidInput,
    LockerError,
    NoFreeCompartment,
    NoPlatformKey,
    NotFound,
    TokenRefused,
    UnknownCourier,
    WrongCode,
    WrongState,
)
from edge.locker.models import CodeAttempt, Compartment, Deposit, DoorOperation, Parcel, UsedPickupToken
from edge.locker.views import LIVE_DEPOSIT_STATES, LIVE_PARCEL_STATES, DepositView, PickupView
from edge.logs import get_logger
from edge.privacy import InvalidPhone, mask_phone, normalise_phone
from edge.settings import CompartmentSpec, LockerSettings
from edge.storage import Actor, Database, audit, record_event
from edge.storage.outbox import OutboxStats

log = get_logger("edge.locker")

Subscriber = Callable[[str, dict[str, Any]], None]
MAX_DOORS_TRIED = 3  # per deposit: a courier should not stand there while every door fails
# Room an opening needs in the outbox (door.opened, door.closed, parcel.*), with margin.
ROOM_ROWS, ROOM_BYTES = 8, 16 * 1024
SIZES = ("S", "M", "L")
REDACTED = "[redacted]"


class PickupTokens(Protocol):
    """edge.identity.tokens.PickupTokenCodec, as far as the locker uses it."""

    def issue(self, parcel_id: str, compartment: str | int, expires_at: datetime) -> str: ...
    def verify(self, token: str, now: datetime, *, already_used: Callable[[str], bool] | None = None) -> Any: ...


@dataclass
class _Pending:
    """Subscriber notifications gathered in a transaction, sent only after it commits."""

    items: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def add(self, event_type: str, data: dict[str, Any]) -> None:
        self.items.append((event_type, redact_event(event_type, data)))


def redact_event(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """An event's data safe to show or push: the sealed secret only goes to the outbox."""
    if event_type != "parcel.deposited":
        return dict(data)
    return {**data, "secret": REDACTED}


def _new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


class LockerService:
    def __init__(
        self,
        db: Database,
        bus: LockBoardBus,
        layout: Iterable[CompartmentSpec],
        clock: Clock,
        box_secret: bytes,
        pickup_tokens: PickupTokens | None,
        alarm: Callable[[bool], None],
        settings: LockerSettings,
        *,
        site_id: str,
        resident_phone_hash: Callable[[str], str | None] | None = None,
        seal_secret: Callable[[dict[str, Any], str], str] | None = None,
    ) -> None:
        self._db = db
        self._bus = bus
        self._layout = {spec.number: spec for spec in layout}
        self._clock = clock
        self._codes = PickupCodes(box_secret)
        self._tokens = pickup_tokens
        self._alarm = alarm
        self._settings = settings
        self._site_id = site_id
        # Set by the identity part: resident id -> the phone hash parcels are filed under.
        self.resident_phone_hash = resident_phone_hash
        # (secret, message_id) -> sealed text for the platform (edge.identity.sealing); without
        # it a pickup code could not reach the resident, so deposits are refused.
        self._seal_secret = seal_secret
        self._lock = threading.RLock()
        self._subscribers: list[Subscriber] = []
        self._live: dict[int, LockState] = {n: UNKNOWN_LOCK for n in self._layout}
        self._reachable: dict[int, bool] = {b: False for b in self.boards}
        self._generation = 0  # bumped by every unlock: status reads older than that are stale
        self._alarm_sounding = False
        self._sync_layout()

    # --- subscribers ------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> None:
        """`callback(event_type, data)` after each committed change (pickup codes redacted)."""
        self._subscribers.append(callback)

    def _notify(self, pending: _Pending) -> None:
        for event_type, data in pending.items:
            for callback in list(self._subscribers):
                try:
                    callback(event_type, data)
                except Exception:  # a failing listener must not undo or block a door change
                    log.exception("locker_subscriber_failed", event_type=event_type)

    # --- reading ----------------------------------------------------------------------------

    @property
    def boards(self) -> list[int]:
        return sorted({spec.board for spec in self._layout.values()})

    def compartment_location(self, number: int) -> CompartmentSpec:
        try:
            return self._layout[number]
        except KeyError:
            raise NotFound(f"there is no compartment {number}") from None

    def snapshot(self) -> list[dict[str, Any]]:
        """Every compartment as the bridge and the UI show it (phones masked, no codes)."""
        with self._db.read() as s:
            rows = s.scalars(select(Compartment).order_by(Compartment.number)).all()
            parcels = {p.compartment: p for p in s.scalars(
                select(Parcel).where(Parcel.state.in_(LIVE_PARCEL_STATES)))}
            deposits = {d.compartment: d for d in s.scalars(
                select(Deposit).where(Deposit.state.in_(LIVE_DEPOSIT_STATES)))}
        with self._lock:
            live = dict(self._live)
        return [self._describe(row, live.get(row.number, UNKNOWN_LOCK), parcels.get(row.number),
                               deposits.get(row.number)) for row in rows if row.number in self._layout]

    def _describe(self, row: Compartment, state: LockState, parcel: Parcel | None,
                  deposit: Deposit | None) -> dict[str, Any]:
        if not row.enabled:
            use = "disabled"
        elif row.fault:
            use = "fault"
        elif state.latch is Latch.UNKNOWN:
            use = "unknown"
        elif deposit is not None:
            use = "deposit"
        elif parcel is not None:
            use = {"stored": "occupied", "pickup_open": "pickup", "return_open": "return"}[parcel.state]
        else:
            use = "free"
        return {
            "number": row.number, "board": row.board, "lock": row.lock, "size": row.size,
            "latch": state.latch.value, "item": state.item, "state": use, "fault": row.fault,
            "parcel": None if parcel is None else {
                "parcel_id": parcel.id, "phone_masked": parcel.phone_masked,
                "deposited_at": iso_utc(parcel.deposited_at), "overdue": parcel.overdue,
                "state": parcel.state,
            },
            "deposit_id": deposit.id if deposit else None,
        }

    def deposit_status(self, deposit_id: str, courier_id: str | None = None) -> DepositView:
        """A deposit's state; with `courier_id`, only that courier's deposit is found."""
        with self._db.read() as s:
            deposit = self._deposit(s, deposit_id)
            if courier_id is not None and deposit.courier_id != courier_id:
                raise NotFound("no deposit with that id")
            return _deposit_view(deposit)

    def pickup_status(self, pickup_or_parcel_id: str) -> PickupView:
        with self._db.read() as s:
            op = s.get(DoorOperation, pickup_or_parcel_id) or s.scalars(
                select(DoorOperation).where(DoorOperation.parcel_id == pickup_or_parcel_id)
                .order_by(DoorOperation.opened_at.desc()).limit(1)).first()
            if op is None:
                raise NotFound("no pickup or parcel with that id")
            return _pickup_view(op)

    def overdue_parcels(self) -> list[dict[str, Any]]:
        with self._db.read() as s:
            rows = s.scalars(select(Parcel).where(Parcel.state == "stored", Parcel.overdue)
                             .order_by(Parcel.due_at)).all()
        return [{"parcel_id": p.id, "compartment": p.compartment, "waybill": p.waybill,
                 "courier_id": p.courier_id, "phone_masked": p.phone_masked,
                 "deposited_at": iso_utc(p.deposited_at), "due_at": iso_utc(p.due_at)} for p in rows]

    # --- couriers ---------------------------------------------------------------------------

    def courier_for_code(self, code: str) -> str:
        """The courier id for a typed courier code; every failure is audited (not the code)."""
        courier_id = self._settings.couriers.get((code or "").strip())
        if courier_id is None:
            with self._db.write() as s:
                audit(s, Actor.COURIER, "courier_login", "refused", clock=self._clock)
            raise UnknownCourier("that courier code is not known at this station")
        return courier_id

    # --- deposits ---------------------------------------------------------------------------

    def start_deposit(self, courier_id: str, waybill: str, phone: str, size: str) -> DepositView:
        """Choose a free working compartment of `size` and open it for the courier."""
        waybill = _clean_waybill(waybill)
        try:
            phone = normalise_phone(phone)
        except InvalidPhone as exc:
            raise InvalidInput("bad_phone", str(exc)) from None
        if size not in SIZES:
            raise InvalidInput("bad_size", "size must be S, M or L")
        if self._seal_secret is None:
            raise NoPlatformKey("deposits need the platform's key (mqtt.platform_public_key) "
                                "to send the pickup code sealed")
        now = self._clock.now()
        with self._lock:
            deposit = Deposit(
                id=_new_id("dep"), courier_id=courier_id, waybill=waybill,
                phone_masked=mask_phone(phone), phone_hash=phone_hash(self._site_id, phone),
                size=size, compartment=0, state="opening", message="", created_at=now, updated_at=now,
            )
            return self._open_deposit_door(deposit, first=None, tried=[])

    def cancel_deposit(self, deposit_id: str) -> DepositView:
        with self._lock:
            pending = _Pending()
            with self._db.write() as s:
                deposit = self._deposit(s, deposit_id)
                if deposit.state not in LIVE_DEPOSIT_STATES:
                    raise WrongState(f"this deposit is already {deposit.state}")
                self._end_deposit(deposit, "cancelled", "cancelled by the courier; take the item out and close the door")
                audit(s, Actor.COURIER, "deposit_cancel", "ok", actor_id=deposit.courier_id,
                      target=deposit.id, detail={"compartment": deposit.compartment}, clock=self._clock)
                pending.add("deposit.cancelled", {"deposit_id": deposit.id, "compartment": deposit.compartment})
                view = _deposit_view(deposit)
        self._notify(pending)
        return view

    def reopen_deposit(self, deposit_id: str) -> DepositView:
        """Open again a door the courier closed before an item was seen inside."""
        with self._lock:
            with self._db.read() as s:
                deposit = self._deposit(s, deposit_id)
            if deposit.state != "empty_closed":
                raise WrongState("only a door closed with nothing inside can be reopened")
            return self._open_deposit_door(deposit, first=deposit.compartment, tried=[])

    def report_door_not_opened(self, deposit_id: str) -> DepositView:
        """The courier says the door did not open: take it out of service, open another."""
        with self._lock:
            pending = _Pending()
            with self._db.write() as s:
                deposit = self._deposit(s, deposit_id)
                if deposit.state not in ("door_open", "empty_closed"):
                    raise WrongState(f"this deposit is {deposit.state}")
                bad = deposit.compartment
                self._flag_fault(s, s.get(Compartment, bad), "courier reported the door did not open",
                                 pending, attempts=0)
                audit(s, Actor.COURIER, "door_not_opened", "reported", actor_id=deposit.courier_id,
                      target=f"compartment:{bad}", detail={"deposit_id": deposit.id}, clock=self._clock)
            self._notify(pending)
            return self._open_deposit_door(deposit, first=None, tried=[bad])

    def _open_deposit_door(self, deposit: Deposit, first: int | None, tried: list[int]) -> DepositView:
        """Open `first`, else free compartments in turn; flag each that will not open."""
        candidate = first
        while True:
            if candidate is None:
                candidate = self._choose_free(deposit.size, exclude=tried)
            if candidate is None:
                self._fail_deposit(deposit, "no free working compartment of this size" if not tried
                                   else f"compartments {', '.join(map(str, tried))} did not open")
                raise (DoorDidNotOpen if tried else NoFreeCompartment)(
                    f"no free working {deposit.size} compartment could be opened")
            opened = self._try_deposit_door(deposit, candidate, tried)
            if opened is not None:
                return opened
            tried.append(candidate)
            candidate = None
            if len(tried) >= MAX_DOORS_TRIED:
                self._fail_deposit(deposit, f"compartments {', '.join(map(str, tried))} did not open")
                raise DoorDidNotOpen("three compartments in a row did not open; please call staff")

    def _try_deposit_door(self, deposit: Deposit, number: int, tried: list[int]) -> DepositView | None:
        reopening = deposit.state == "empty_closed"
        self._refuse_if_outbox_full()
        with self._db.write() as s:
            row = s.merge(deposit)
            row.compartment, row.state, row.updated_at = number, "opening", self._clock.now()
        comp = self._layout[number]
        result = self._unlock(comp)
        pending = _Pending()
        with self._db.write() as s:
            row = s.get(Deposit, deposit.id)
            why = "deposit_reopen" if reopening else "deposit"
            self._audit_opening(s, Actor.COURIER, deposit.courier_id, number, why, result)
            if result.opened:
                row.state = "door_open"
                row.message = (f"compartment {number} is open"
                               + (f"; {', '.join(map(str, tried))} did not open" if tried else ""))
                row.updated_at = self._clock.now()
                self._mark_opened(s, number, why, pending, deposit_id=deposit.id)
                view = _deposit_view(row)
            else:
                self._record_failed_unlock(s, comp, result, pending)
                row.message = f"compartment {number} did not open"
                view = None
            deposit.state, deposit.compartment = row.state, row.compartment
        self._notify(pending)
        return view

    def _fail_deposit(self, deposit: Deposit, message: str) -> None:
        with self._db.write() as s:
            row = s.merge(deposit)
            self._end_deposit(row, "failed", message)
            audit(s, Actor.COURIER, "deposit", "failed", actor_id=deposit.courier_id,
                  target=deposit.id, detail={"message": message}, clock=self._clock)

    def _end_deposit(self, deposit: Deposit, state: str, message: str) -> None:
        deposit.state, deposit.message, deposit.updated_at = state, message, self._clock.now()

    def _confirm_deposit(self, s: Session, deposit: Deposit, pending: _Pending) -> None:
        """Latch closed on an item: the parcel is stored and its pickup code issued (once)."""
        now = self._clock.now()
        code, code_hash = self._unique_code(s)
        parcel = Parcel(
            id=_new_id("par"), deposit_id=deposit.id, compartment=deposit.compartment,
            size=deposit.size, waybill=deposit.waybill, courier_id=deposit.courier_id,
            phone_masked=deposit.phone_masked, phone_hash=deposit.phone_hash, code_hash=code_hash,
            state="stored", overdue=False, deposited_at=now,
            due_at=now + timedelta(hours=self._settings.retention_hours), closed_at=None,
        )
        s.add(parcel)
        deposit.parcel_id = parcel.id
        self._end_deposit(deposit, "deposited", f"parcel stored in compartment {deposit.compartment}")
        # The code and token exist in clear only in this frame: they leave sealed to the
        # platform, bound to the event's message id (ADR 0110); the box keeps their hashes.
        message_id = str(uuid.uuid4())
        token = self._tokens.issue(parcel.id, parcel.compartment, parcel.due_at) if self._tokens else None
        data = {
            "parcel_id": parcel.id, "deposit_id": deposit.id, "compartment": parcel.compartment,
            "size": parcel.size, "waybill": parcel.waybill, "courier_id": parcel.courier_id,
            "phone_masked": parcel.phone_masked,
            "secret": self._seal_secret({"pickup_code": code, "pickup_token": token}, message_id),
            "deposited_at": iso_utc(now), "due_at": iso_utc(parcel.due_at),
        }
        del code, token
        record_event(s, "parcel.deposited", data, clock=self._clock, message_id=message_id)
        pending.add("parcel.deposited", data)
        audit(s, Actor.COURIER, "deposit", "deposited", actor_id=deposit.courier_id,
              target=parcel.id, detail={"compartment": parcel.compartment, "deposit_id": deposit.id},
              clock=self._clock)

    def _unique_code(self, s: Session) -> tuple[str, str]:
        while True:
            code = self._codes.new_code()
            digest = self._codes.digest(code)
            clash = s.scalar(select(func.count()).select_from(Parcel).where(
                Parcel.code_hash == digest, Parcel.state.in_(LIVE_PARCEL_STATES)))
            if not clash:
                return code, digest

    # --- pickups and returns ----------------------------------------------------------------

    def pickup_with_code(self, code: str, kiosk_id: str = "kiosk") -> PickupView:
        """Open the door of the parcel with this code. Wrong codes count per kiosk."""
        with self._lock:
            with self._db.write() as s:
                outcome = self._check_code(s, code, kiosk_id)
            if isinstance(outcome, LockerError):
                raise outcome
            return self._open_for_parcel(outcome, "pickup", "code", Actor.RESIDENT, None)

    def _check_code(self, s: Session, raw: str, kiosk_id: str) -> str | LockerError:
        """The parcel id the code opens, or the refusal; the attempt is recorded either way."""
        now = self._clock.now()
        cooldown = self._cooldown_left(s, kiosk_id, now)
        if cooldown:
            audit(s, Actor.RESIDENT, "pickup_code", "cooling_down", target=f"kiosk:{kiosk_id}", clock=self._clock)
            return CoolingDown(cooldown)
        code = normalise_code(raw)
        if code is None:  # cannot match any parcel, so it tells a guesser nothing: not counted
            audit(s, Actor.RESIDENT, "pickup_code", "malformed", target=f"kiosk:{kiosk_id}", clock=self._clock)
            return InvalidInput("bad_code_format", "a pickup code has 8 digits")
        parcel_id = s.scalar(select(Parcel.id).where(
            Parcel.code_hash == self._codes.digest(code), Parcel.state == "stored"))
        attempt = CodeAttempt(kiosk_id=kiosk_id, ts=now, ok=parcel_id is not None, cooldown_until=None)
        s.add(attempt)
        if parcel_id is not None:
            audit(s, Actor.RESIDENT, "pickup_code", "accepted", target=parcel_id,
                  detail={"kiosk": kiosk_id}, clock=self._clock)
            return parcel_id
        return self._count_failure(s, attempt, kiosk_id, now, "pickup_code")

    def _count_failure(self, s: Session, attempt: CodeAttempt, kiosk_id: str, now: datetime,
                       action: str) -> LockerError:
        """A failed pickup attempt (wrong code, unrecognised eye) spends the kiosk's budget."""
        s.flush()
        wrong = self._wrong_attempts(s, kiosk_id, now)
        left = self._settings.wrong_code_limit - wrong
        if left <= 0:
            attempt.cooldown_until = now + timedelta(seconds=self._settings.wrong_code_cooldown_s)
            audit(s, Actor.RESIDENT, action, "wrong_cooldown_started", target=f"kiosk:{kiosk_id}",
                  detail={"wrong_in_window": wrong}, clock=self._clock)
            return CoolingDown(int(self._settings.wrong_code_cooldown_s))
        audit(s, Actor.RESIDENT, action, "wrong", target=f"kiosk:{kiosk_id}",
              detail={"attempts_left": left}, clock=self._clock)
        return WrongCode(left)

    def refuse_if_cooling_down(self, kiosk_id: str = "kiosk") -> None:
        """Raise CoolingDown while this kiosk's pickup attempts are paused."""
        with self._db.read() as s:
            left = self._cooldown_left(s, kiosk_id, self._clock.now())
        if left:
            raise CoolingDown(left)

    def record_failed_identification(self, kiosk_id: str, method: str) -> LockerError:
        """An identification that named nobody (iris no match or near miss) counts like a
        wrong code: repeated tries at one kiosk end in the same cooldown. Returns the refusal."""
        with self._lock, self._db.write() as s:
            now = self._clock.now()
            attempt = CodeAttempt(kiosk_id=kiosk_id, ts=now, ok=False, cooldown_until=None)
            s.add(attempt)
            return self._count_failure(s, attempt, kiosk_id, now, f"pickup_{method}")

    def _cooldown_left(self, s: Session, kiosk_id: str, now: datetime) -> int:
        until = s.scalar(select(func.max(CodeAttempt.cooldown_until)).where(CodeAttempt.kiosk_id == kiosk_id))
        return max(0, int((until - now).total_seconds() + 0.999)) if until and until > now else 0

    def _wrong_attempts(self, s: Session, kiosk_id: str, now: datetime) -> int:
        """Wrong codes in the window, not counting those before the last cooldown ended."""
        since = now - timedelta(seconds=self._settings.wrong_code_window_s)
        last_cooldown = s.scalar(select(func.max(CodeAttempt.cooldown_until))
                                 .where(CodeAttempt.kiosk_id == kiosk_id))
        if last_cooldown is not None and last_cooldown > since:
            since = last_cooldown
        return s.scalar(select(func.count()).select_from(CodeAttempt).where(
            CodeAttempt.kiosk_id == kiosk_id, CodeAttempt.ts > since, CodeAttempt.ts <= now,
            CodeAttempt.ok.is_(False))) or 0

    def pickup_with_token(self, token: str, kiosk_id: str = "kiosk") -> PickupView:
        """Open the door for a pickup QR token from parcel.deposited; each token works once."""
        if self._tokens is None:
            raise LockerError("pickup QR codes are not available on this station")
        with self._lock:
            try:
                with self._db.read() as s:
                    claim = self._tokens.verify(
                        token, self._clock.now(),
                        already_used=lambda token_id: s.get(UsedPickupToken, token_id) is not None)
            except TokenError as exc:
                with self._db.write() as s:
                    audit(s, Actor.RESIDENT, "pickup_token", f"refused_{exc.code}",
                          target=f"kiosk:{kiosk_id}", clock=self._clock)
                raise TokenRefused(exc.code, str(exc)) from None
            with self._db.read() as s:
                parcel = s.get(Parcel, claim.parcel_id)
            if parcel is None or parcel.state != "stored":
                with self._db.write() as s:
                    audit(s, Actor.RESIDENT, "pickup_token", "refused_not_stored", target=claim.parcel_id,
                          clock=self._clock)
                raise TokenRefused("used", "this parcel has already been collected")
            return self._open_for_parcel(parcel.id, "pickup", "token", Actor.RESIDENT, None,
                                         token_id=claim.token_id)

    def pickups_for_resident(self, resident_id: str) -> list[PickupView]:
        """Open every stored parcel of an identified resident (QR badge or iris)."""
        phone = self.resident_phone_hash(resident_id) if self.resident_phone_hash else None
        if phone is None:
            return []
        with self._db.read() as s:
            parcel_ids = s.scalars(select(Parcel.id).where(Parcel.phone_hash == phone,
                                                           Parcel.state == "stored")).all()
        views = []
        with self._lock:
            for parcel_id in parcel_ids:
                try:
                    views.append(self._open_for_parcel(parcel_id, "pickup", "resident",
                                                       Actor.RESIDENT, resident_id))
                except LockerError as exc:
                    log.warning("resident_pickup_door_failed", parcel_id=parcel_id, code=exc.code)
        return views

    def return_parcel(self, courier_id: str, parcel_id: str) -> PickupView:
        """Open an overdue parcel's door so a courier can take it back."""
        with self._lock:
            with self._db.read() as s:
                parcel = s.get(Parcel, parcel_id)
            if parcel is None:
                raise NotFound("no parcel with that id")
            if parcel.state != "stored" or not parcel.overdue:
                raise WrongState("only overdue parcels still in the locker can be taken back")
            return self._open_for_parcel(parcel_id, "return", "courier", Actor.COURIER, courier_id)

    def _open_for_parcel(self, parcel_id: str, purpose: str, method: str, actor: Actor,
                         actor_id: str | None, *, token_id: str | None = None) -> PickupView:
        self._refuse_if_outbox_full()
        with self._db.read() as s:
            parcel = s.get(Parcel, parcel_id)
            comp_row = s.get(Compartment, parcel.compartment)
        if comp_row.fault:
            raise CompartmentOutOfService(
                f"compartment {parcel.compartment} is out of service; staff have been told")
        comp = self._layout[parcel.compartment]
        result = self._unlock(comp)
        pending = _Pending()
        with self._db.write() as s:
            self._audit_opening(s, actor, actor_id, comp.number, purpose, result, parcel_id=parcel_id)
            if result.opened:
                op = DoorOperation(id=_new_id("pk"), parcel_id=parcel_id, compartment=comp.number,
                                   purpose=purpose, method=method, actor_id=actor_id,
                                   state="door_open", opened_at=self._clock.now(), closed_at=None)
                s.add(op)
                s.get(Parcel, parcel_id).state = "pickup_open" if purpose == "pickup" else "return_open"
                if token_id is not None:
                    s.add(UsedPickupToken(token_id=token_id, parcel_id=parcel_id, used_at=self._clock.now()))
                self._mark_opened(s, comp.number, purpose, pending, parcel_id=parcel_id)
                view = _pickup_view(op)
            else:
                self._record_failed_unlock(s, comp, result, pending)
        self._notify(pending)
        if not result.opened:
            raise self._unlock_error(result)
        return view

    # --- remote and technician openings -----------------------------------------------------

    def open_remote(self, compartment: int, operator: str, reason: str) -> dict[str, Any]:
        return self._open_plain(compartment, Actor.REMOTE, operator, reason or "remote")

    def open_by_technician(self, compartment: int, who: str, reason: str = "diagnostics") -> dict[str, Any]:
        return self._open_plain(compartment, Actor.TECHNICIAN, who, reason)

    def _open_plain(self, number: int, actor: Actor, actor_id: str, reason: str) -> dict[str, Any]:
        """Open a door for staff; it changes no parcel (a parcel inside stays stored)."""
        comp = self.compartment_location(number)
        with self._lock:
            self._refuse_if_outbox_full()
            result = self._unlock(comp)
            pending = _Pending()
            with self._db.write() as s:
                self._audit_opening(s, actor, actor_id, number, reason, result)
                if result.opened:
                    self._mark_opened(s, number, actor.value, pending, operator=actor_id)
                else:
                    self._record_failed_unlock(s, comp, result, pending)
            self._notify(pending)
        return {"compartment": number, "opened": result.opened, "attempts": result.attempts,
                "latch": result.state.latch.value, "error": result.error}

    def clear_fault(self, number: int, who: str) -> None:
        """A technician has repaired a compartment: back in service."""
        self.compartment_location(number)
        with self._lock, self._db.write() as s:
            row = s.get(Compartment, number)
            audit(s, Actor.TECHNICIAN, "clear_fault", "ok", actor_id=who, target=f"compartment:{number}",
                  detail={"fault": row.fault}, clock=self._clock)
            row.fault, row.fault_at = None, None

    # --- doors ------------------------------------------------------------------------------

    def _refuse_if_outbox_full(self) -> None:
        """Raise StorageFull while the door is still shut: a door opened whose door.opened
        could then not be written would be an opening the cloud never hears of (ADR 0026).

        Far from the budget, one read decides. Near it, the outbox's own rule decides (it
        may drop telemetry to make room): probe events for the whole room an opening needs
        (ROOM_ROWS rows, ROOM_BYTES bytes), not one, in a transaction that is rolled back, so
        it costs no commit and uses up no seq."""
        with self._db.read() as s:
            stats = s.get(OutboxStats, 1)
            if stats is None or (stats.pending_rows + ROOM_ROWS <= stats.max_rows
                                 and stats.pending_bytes + ROOM_BYTES <= stats.max_bytes):
                return
        padding = "x" * (ROOM_BYTES // ROOM_ROWS - 64)
        with self._db.write() as s:
            try:
                for _ in range(ROOM_ROWS):
                    record_event(s, "door.opened", {"compartment": 0, "probe": padding}, clock=self._clock)
            finally:
                s.rollback()

    def _unlock(self, comp: CompartmentSpec) -> UnlockResult:
        try:
            result = self._bus.unlock(comp.board, comp.lock)
        except BusError as exc:
            result = UnlockResult(comp.board, comp.lock, False, 0, UNKNOWN_LOCK, str(exc))
        self._generation += 1
        if result.opened:
            self._live[comp.number] = result.state
        return result

    def _unlock_error(self, result: UnlockResult) -> LockerError:
        if result.state.latch is Latch.UNKNOWN:
            return BoardUnreachable("the locker board is not answering; please call staff")
        return DoorDidNotOpen("the door did not open; staff have been told")

    def _audit_opening(self, s: Session, actor: Actor, actor_id: str | None, number: int, why: str,
                       result: UnlockResult, **detail: Any) -> None:
        audit(s, actor, "door_open", "opened" if result.opened else "failed", actor_id=actor_id,
              target=f"compartment:{number}",
              detail={"reason": why, "attempts": result.attempts, "error": result.error, **detail},
              clock=self._clock)

    def _record_failed_unlock(self, s: Session, comp: CompartmentSpec, result: UnlockResult,
                              pending: _Pending) -> None:
        """A latch still closed after the driver's confirmed retry is a door fault; silence is not."""
        if result.state.latch is Latch.CLOSED:
            self._flag_fault(s, s.get(Compartment, comp.number),
                             result.error or "latch did not open", pending, attempts=result.attempts)

    def _flag_fault(self, s: Session, row: Compartment, reason: str, pending: _Pending, *,
                    attempts: int) -> None:
        row.fault, row.fault_at = reason[:200], self._clock.now()
        data = {"compartment": row.number, "board": row.board, "lock": row.lock,
                "reason": reason, "attempts": attempts}
        record_event(s, "door.fault", data, clock=self._clock)
        pending.add("door.fault", data)
        log.warning("door_fault", compartment=row.number, reason=reason)

    def _mark_opened(self, s: Session, number: int, reason: str, pending: _Pending, **extra: Any) -> None:
        row = s.get(Compartment, number)
        row.latch, row.opened_at, row.left_open_alerted = Latch.OPEN.value, self._clock.now(), False
        data = {"compartment": number, "reason": reason, **extra}
        record_event(s, "door.opened", data, clock=self._clock)
        pending.add("door.opened", data)

    def apply_board_status(self, status: BoardStatus, generation: int) -> None:
        """Feed one status read (taken when `generation` was current) into the rules."""
        pending = _Pending()
        with self._lock:
            if generation != self._generation:
                return  # an unlock happened during the read; the next read is fresh
            self._apply(status, pending, reason="")
        self._notify(pending)

    def _apply(self, status: BoardStatus, pending: _Pending, reason: str) -> None:
        was_reachable = self._reachable.get(status.board, False)
        self._reachable[status.board] = status.reachable
        numbers = [n for n, spec in self._layout.items() if spec.board == status.board]
        if not status.reachable:
            for n in numbers:
                self._live[n] = UNKNOWN_LOCK
            if was_reachable:
                log.warning("board_unreachable", board=status.board, error=status.error)
                pending.add("board.unreachable", {"board": status.board, "error": status.error})
            return
        changed = [n for n in numbers if status.locks[self._layout[n].lock] != self._live.get(n)]
        if not changed:
            return
        with self._db.write() as s:
            for n in changed:
                self._on_state(s, s.get(Compartment, n), status.locks[self._layout[n].lock], pending, reason)
        for n in changed:
            self._live[n] = status.locks[self._layout[n].lock]
        if not was_reachable:
            pending.add("board.reachable", {"board": status.board})

    def _on_state(self, s: Session, row: Compartment, state: LockState, pending: _Pending,
                  reason: str) -> None:
        """One compartment's latch or item changed (compared with what the DB last saw)."""
        now = self._clock.now()
        if state.latch.value != row.latch:
            if state.latch is Latch.OPEN:
                row.latch, row.opened_at, row.left_open_alerted = "open", now, False
                data = {"compartment": row.number, "reason": reason or "unexpected"}
                record_event(s, "door.opened", data, clock=self._clock)
                pending.add("door.opened", data)
                if not reason:
                    audit(s, Actor.SYSTEM, "door_opened_without_command", "seen",
                          target=f"compartment:{row.number}", clock=self._clock)
            else:
                open_s = (now - row.opened_at).total_seconds() if row.opened_at else None
                row.latch, row.opened_at = "closed", None
                data = {"compartment": row.number, "open_s": open_s, **({"reason": reason} if reason else {})}
                record_event(s, "door.closed", data, clock=self._clock)
                pending.add("door.closed", data)
                if row.left_open_alerted:
                    row.left_open_alerted = False
                    self._silence_alarm_if_all_closed(s, row.number)
        row.item = state.item
        self._follow_up(s, row, state, pending)

    def _follow_up(self, s: Session, row: Compartment, state: LockState, pending: _Pending) -> None:
        """What the compartment's door and item state mean for a deposit or a pickup in it."""
        deposit = s.scalars(select(Deposit).where(Deposit.compartment == row.number,
                                                  Deposit.state.in_(LIVE_DEPOSIT_STATES))).first()
        if deposit is not None and state.latch is Latch.CLOSED:
            if state.item:
                self._confirm_deposit(s, deposit, pending)
            elif deposit.state != "empty_closed":
                self._end_deposit(deposit, "empty_closed",
                                  "the door closed but no item was seen; reopen it or cancel")
                pending.add("deposit.empty_closed", {"deposit_id": deposit.id, "compartment": row.number})
            return
        if deposit is not None and deposit.state == "opening" and state.latch is Latch.OPEN:
            self._end_deposit(deposit, "door_open", f"compartment {row.number} is open")
            return
        op = s.scalars(select(DoorOperation).where(DoorOperation.compartment == row.number,
                                                   DoorOperation.state == "door_open")).first()
        if op is not None and (state.latch is Latch.CLOSED or state.item is False):
            self._complete_door_op(s, op, item_left=bool(state.item), pending=pending)

    def _complete_door_op(self, s: Session, op: DoorOperation, item_left: bool, pending: _Pending) -> None:
        now = self._clock.now()
        parcel = s.get(Parcel, op.parcel_id)
        done = "collected" if op.purpose == "pickup" else "returned"
        op.state, op.closed_at = done, now
        parcel.state, parcel.closed_at = done, now
        data = {"parcel_id": parcel.id, "compartment": parcel.compartment, "method": op.method,
                "waybill": parcel.waybill, f"{done}_at": iso_utc(now), "item_left_inside": item_left}
        if op.purpose == "return":
            data["courier_id"] = op.actor_id
        record_event(s, f"parcel.{done}", data, clock=self._clock)
        pending.add(f"parcel.{done}", data)

    # --- timers -----------------------------------------------------------------------------

    def check_doors_left_open(self) -> None:
        """door.left_open (once per opening) and the buzzer for doors open too long."""
        now = self._clock.now()
        limit = timedelta(seconds=self._settings.door_left_open_s)
        pending = _Pending()
        with self._lock:
            open_now = [n for n, st in self._live.items() if st.latch is Latch.OPEN]
            if not open_now:
                return
            # Read first: this runs on every poll while a door is open, and most passes have
            # nothing to record, so they need not take the database's write lock.
            with self._db.read() as s:
                rows = s.execute(select(Compartment.number, Compartment.opened_at,
                                        Compartment.left_open_alerted).where(
                    Compartment.number.in_(open_now), Compartment.latch == "open")).all()
            due = [number for number, opened_at, alerted in rows
                   if not alerted and opened_at is not None and now - opened_at >= limit]
            if due:
                with self._db.write() as s:
                    for row in s.scalars(select(Compartment).where(
                            Compartment.number.in_(due), Compartment.left_open_alerted.is_(False))):
                        row.left_open_alerted = True
                        data = {"compartment": row.number,
                                "open_s": round((now - row.opened_at).total_seconds(), 1)}
                        record_event(s, "door.left_open", data, clock=self._clock)
                        pending.add("door.left_open", data)
            # Also true after a restart: the buzzer's state is not in the database.
            alerted_and_open = bool(due) or any(alerted for _, _, alerted in rows)
            if alerted_and_open and not self._alarm_sounding:
                self._alarm_sounding = True
                self._alarm(True)
        self._notify(pending)

    def _silence_alarm_if_all_closed(self, s: Session, closed_now: int) -> None:
        still = s.scalar(select(func.count()).select_from(Compartment).where(
            Compartment.left_open_alerted.is_(True), Compartment.number != closed_now))
        if not still and self._alarm_sounding:
            self._alarm_sounding = False
            self._alarm(False)

    def check_retention(self) -> int:
        """Mark parcels past retention overdue (parcel.overdue once each); returns how many."""
        now = self._clock.now()
        pending = _Pending()
        with self._lock, self._db.write() as s:
            for parcel in s.scalars(select(Parcel).where(Parcel.state == "stored",
                                                         Parcel.overdue.is_(False), Parcel.due_at <= now)):
                parcel.overdue = True
                data = {"parcel_id": parcel.id, "compartment": parcel.compartment,
                        "waybill": parcel.waybill, "courier_id": parcel.courier_id,
                        "deposited_at": iso_utc(parcel.deposited_at), "due_at": iso_utc(parcel.due_at)}
                record_event(s, "parcel.overdue", data, clock=self._clock)
                pending.add("parcel.overdue", data)
        self._notify(pending)
        return len(pending.items)

    def expire_abandoned_deposits(self) -> int:
        """Cancel deposits closed empty and left so longer than deposit_close_timeout_s."""
        cutoff = self._clock.now() - timedelta(seconds=self._settings.deposit_close_timeout_s)
        with self._lock, self._db.write() as s:
            stale = s.scalars(select(Deposit).where(Deposit.state == "empty_closed",
                                                    Deposit.updated_at <= cutoff)).all()
            for deposit in stale:
                self._end_deposit(deposit, "cancelled", "closed empty and abandoned")
                audit(s, Actor.SYSTEM, "deposit_cancel", "timeout", target=deposit.id, clock=self._clock)
        return len(stale)

    # --- start-up ---------------------------------------------------------------------------

    def reconcile(self) -> list[dict[str, Any]]:
        """Read every board and settle the DB with what is physically there (after a power
        loss or a crash). Returns the findings, which are also audited and sent as
        locker.reconciled."""
        findings: list[dict[str, Any]] = []
        pending = _Pending()
        with self._lock:
            for board in self.boards:
                status = self._read(board)
                if not status.reachable:
                    findings.append({"finding": "board_unreachable", "board": board, "error": status.error})
                findings.extend(self._reconcile_board(status, pending))
            with self._db.write() as s:
                if findings:
                    record_event(s, "locker.reconciled", {"findings": findings}, clock=self._clock)
                audit(s, Actor.SYSTEM, "reconcile", "changes" if findings else "clean",
                      detail={"findings": findings}, clock=self._clock)
        self._notify(pending)
        log.info("locker_reconciled", findings=len(findings))
        return findings

    def _reconcile_board(self, status: BoardStatus, pending: _Pending) -> list[dict[str, Any]]:
        self._live.update({n: UNKNOWN_LOCK for n, spec in self._layout.items() if spec.board == status.board})
        if not status.reachable:
            self._reachable[status.board] = False
            return []
        found: list[dict[str, Any]] = []
        with self._db.read() as s:
            before = {d.compartment: d.state for d in s.scalars(
                select(Deposit).where(Deposit.state.in_(LIVE_DEPOSIT_STATES)))}
            ops = {o.compartment: o.purpose for o in s.scalars(
                select(DoorOperation).where(DoorOperation.state == "door_open"))}
            rows = {r.number: r.latch for r in s.scalars(select(Compartment))}
        self._live.update({n: LockState(Latch(rows.get(n, "closed")), None)
                           for n, spec in self._layout.items() if spec.board == status.board})
        self._reachable[status.board] = True
        # Re-applying the stored latch first makes _apply compare against what the DB saw.
        self._apply(status, pending, reason="found_at_start")
        with self._db.write() as s:
            for n, spec in self._layout.items():
                if spec.board != status.board:
                    continue
                state = status.locks[spec.lock]
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
                self._end_deposit(deposit, "cancelled", "closed empty before the controller restarted")
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
                  detail={"compartment": n}, clock=self._clock)
        return found

    def _read(self, board: int) -> BoardStatus:
        try:
            return self._bus.read_board(board)
        except BusError as exc:
            return BoardStatus.unreachable(board, str(exc))

    def poll(self) -> None:
        """One monitor pass: read every board, apply what changed, then the timers."""
        for board in self.boards:
            generation = self._generation
            self.apply_board_status(self._read(board), generation)
        self.check_doors_left_open()

    # --- helpers ----------------------------------------------------------------------------

    def _sync_layout(self) -> None:
        with self._db.write() as s:
            for spec in self._layout.values():
                row = s.get(Compartment, spec.number)
                if row is None:
                    s.add(Compartment(number=spec.number, board=spec.board, lock=spec.lock,
                                      size=spec.size, enabled=spec.enabled, latch="closed",
                                      item=None, opened_at=None, left_open_alerted=False))
                else:
                    row.board, row.lock, row.size, row.enabled = spec.board, spec.lock, spec.size, spec.enabled

    def _choose_free(self, size: str, exclude: list[int]) -> int | None:
        with self._db.read() as s:
            busy = set(s.scalars(select(Parcel.compartment).where(Parcel.state.in_(LIVE_PARCEL_STATES))))
            busy |= set(s.scalars(select(Deposit.compartment).where(Deposit.state.in_(LIVE_DEPOSIT_STATES))))
            usable = set(s.scalars(select(Compartment.number).where(
                Compartment.enabled.is_(True), Compartment.fault.is_(None), Compartment.size == size)))
        for n in sorted(usable - busy - set(exclude)):
            state = self._live.get(n, UNKNOWN_LOCK)
            if n in self._layout and state.latch is Latch.CLOSED and state.item is False:
                return n
        return None

    def _deposit(self, s: Session, deposit_id: str) -> Deposit:
        deposit = s.get(Deposit, deposit_id)
        if deposit is None:
            raise NotFound("no deposit with that id")
        return deposit


def _clean_waybill(raw: str) -> str:
    waybill = (raw or "").strip()
    if not waybill or len(waybill) > 64 or not waybill.isprintable():
        raise InvalidInput("bad_waybill", "a waybill number has 1-64 printable characters")
    return waybill


def _deposit_view(d: Deposit) -> DepositView:
    return DepositView(d.id, d.compartment, d.size, d.state, d.message, d.parcel_id)


def _pickup_view(op: DoorOperation) -> PickupView:
    return PickupView(op.id, op.parcel_id, op.compartment, op.purpose, op.state)
