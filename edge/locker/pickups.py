"""Pickups and returns: a resident's code, QR token or identity, a courier taking an
overdue parcel back, and the per-kiosk attempt budget that stops code guessing."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from edge.clock import iso_utc
from edge.drivers.lockboard.base import Latch, LockState
from edge.identity.tokens import TokenError
from edge.locker.code_claims import NOT_OPENED, OPENING, Claim, CodeClaims
from edge.locker.codes import CODE_DIGITS, PickupCodes, normalise_code
from edge.locker.deposits import PickupTokens
from edge.locker.doors import Doors, Pending, new_id
from edge.locker.errors import (
    CodeUsed,
    CompartmentOutOfService,
    CoolingDown,
    InvalidInput,
    LockerError,
    NotFound,
    TokenRefused,
    WrongCode,
    WrongState,
)
from edge.locker.models import CodeAttempt, Compartment, DoorOperation, Parcel, UsedPickupToken
from edge.locker.views import PickupView
from edge.logs import get_logger
from edge.storage import Actor, audit, record_event

log = get_logger("edge.locker")
# Openings a pickup code started: the typed code and, with one code for every parcel, its next doors.
CODE_METHODS = ("code", "code_next")
# Openings a pickup QR token started: the scanned token and, with one code for every parcel, its next doors.
TOKEN_METHODS = ("token", "token_next")
NEXT_DOOR_WITHIN = timedelta(minutes=3)  # after a door closes, its resident may open the next
# A parcel in these states has let its code go: typing it again is told "already used".
USED_CODE_STATES = ("collected", "returned", "refused")


class AttemptBudget:
    """Owns the per-kiosk attempt rows: wrong codes and unrecognised eyes within the window
    spend one budget, and an empty budget starts a cooldown for that kiosk."""

    def __init__(self, doors: Doors) -> None:
        self._doors = doors

    def cooldown_left(self, s: Session, kiosk_id: str, now: datetime) -> int:
        until = s.scalar(select(func.max(CodeAttempt.cooldown_until)).where(CodeAttempt.kiosk_id == kiosk_id))
        return max(0, int((until - now).total_seconds() + 0.999)) if until and until > now else 0

    def refuse_if_cooling_down(self, kiosk_id: str = "kiosk") -> None:
        """Raise CoolingDown while this kiosk's pickup attempts are paused."""
        with self._doors.db.read() as s:
            left = self.cooldown_left(s, kiosk_id, self._doors.clock.now())
        if left:
            raise CoolingDown(left)

    def record_failed_identification(self, kiosk_id: str, method: str) -> LockerError:
        """An identification that named nobody (iris no match or near miss) counts like a
        wrong code: repeated tries at one kiosk end in the same cooldown. Returns the refusal."""
        with self._doors.lock, self._doors.db.write() as s:
            now = self._doors.clock.now()
            attempt = CodeAttempt(kiosk_id=kiosk_id, ts=now, ok=False, cooldown_until=None)
            s.add(attempt)
            return self.count_failure(s, attempt, kiosk_id, now, f"pickup_{method}")

    def count_failure(self, s: Session, attempt: CodeAttempt, kiosk_id: str, now: datetime,
                      action: str, *, used: bool = False) -> LockerError:
        """A failed pickup attempt (wrong code, unrecognised eye) spends the kiosk's budget.
        `used`: the code was a real one whose parcel has left: it costs the same as a wrong
        one (so it is no cheaper oracle), and the resident is told it was used."""
        settings, clock = self._doors.settings, self._doors.clock
        s.flush()
        wrong = self._wrong_attempts(s, kiosk_id, now)
        left = settings.wrong_code_limit - wrong
        if left <= 0:
            attempt.cooldown_until = now + timedelta(seconds=settings.wrong_code_cooldown_s)
            audit(s, Actor.RESIDENT, action, "wrong_cooldown_started", target=f"kiosk:{kiosk_id}",
                  detail={"wrong_in_window": wrong}, clock=clock)
            return CoolingDown(int(settings.wrong_code_cooldown_s))
        audit(s, Actor.RESIDENT, action, "used" if used else "wrong", target=f"kiosk:{kiosk_id}",
              detail={"attempts_left": left}, clock=clock)
        return CodeUsed(left) if used else WrongCode(left)

    def _wrong_attempts(self, s: Session, kiosk_id: str, now: datetime) -> int:
        """Wrong codes in the window, not counting those before the last cooldown ended."""
        since = now - timedelta(seconds=self._doors.settings.wrong_code_window_s)
        last_cooldown = s.scalar(select(func.max(CodeAttempt.cooldown_until))
                                 .where(CodeAttempt.kiosk_id == kiosk_id))
        if last_cooldown is not None and last_cooldown > since:
            since = last_cooldown
        return s.scalar(select(func.count()).select_from(CodeAttempt).where(
            CodeAttempt.kiosk_id == kiosk_id, CodeAttempt.ts > since, CodeAttempt.ts <= now,
            CodeAttempt.ok.is_(False))) or 0


class Pickups:
    """Owns the door operations on stored parcels (pickup by code, token or identified
    resident; return by a courier) and the used-token rows; wrong codes go to the
    `AttemptBudget`. A door operation ends when its door closes or the item is taken."""

    def __init__(self, doors: Doors, codes: PickupCodes, tokens: PickupTokens | None,
                 resident_phone_hash: Callable[[str], str | None] | None) -> None:
        self._doors = doors
        self._codes = codes
        self._tokens = tokens
        # resident id -> the phone hash their parcels are filed under (from the community part)
        self._resident_phone_hash = resident_phone_hash
        self.budget = AttemptBudget(doors)
        self._claims = CodeClaims(doors.db, codes, doors.clock)  # a right code's fast claim (ADR 0137)
        doors.add_follow_up(self.follow_up)
        doors.add_restart_check(self.settle_claim)

    def status(self, pickup_or_parcel_id: str) -> PickupView:
        with self._doors.db.read() as s:
            op = s.get(DoorOperation, pickup_or_parcel_id) or s.scalars(
                select(DoorOperation).where(DoorOperation.parcel_id == pickup_or_parcel_id)
                .order_by(DoorOperation.opened_at.desc()).limit(1)).first()
            if op is None:
                raise NotFound("no pickup or parcel with that id")
            return pickup_view(op, self._next_doors(s, op))

    def open_next(self, pickup_id: str) -> PickupView:
        """One code, every parcel: after a door opened by a code (typed, or a scanned pickup QR)
        has closed, open the same resident's next parcel (the code was checked once; each door
        is its own audited opening)."""
        doors = self._doors
        if not doors.settings.one_code_all_parcels:
            raise WrongState("here a pickup code opens one door; type the next code")
        with doors.lock:
            with doors.db.read() as s:
                op = s.get(DoorOperation, pickup_id)
                if op is None or op.purpose != "pickup" or op.method not in CODE_METHODS + TOKEN_METHODS:
                    raise NotFound("no pickup by code with that id")
                scanned = op.method in TOKEN_METHODS
                if op.state != "collected" or op.closed_at is None:
                    raise WrongState(f"please close door {op.compartment} first")
                if doors.clock.now() - op.closed_at > NEXT_DOOR_WITHIN:
                    raise WrongState("please scan your pickup QR code again" if scanned
                                     else "please type your pickup code again")
                following = self._following(s, op)
            if not following:
                raise NotFound("no more parcels for you here")
            view = self._open_for_parcel(following[0].id, "pickup", "token_next" if scanned else "code_next",
                                         Actor.RESIDENT, None)
        return self.status(view.pickup_id)

    def _following(self, s: Session, op: DoorOperation) -> list[Parcel]:
        phone_hash = s.scalar(select(Parcel.phone_hash).where(Parcel.id == op.parcel_id))
        return list(s.scalars(select(Parcel).where(Parcel.phone_hash == phone_hash, Parcel.state == "stored")
                              .order_by(Parcel.deposited_at, Parcel.compartment)))

    def _next_doors(self, s: Session, op: DoorOperation) -> tuple[int, ...]:
        if not self._doors.settings.one_code_all_parcels or op.purpose != "pickup" \
                or op.method not in CODE_METHODS + TOKEN_METHODS:
            return ()
        return tuple(p.compartment for p in self._following(s, op))

    def with_code(self, code: str, kiosk_id: str = "kiosk") -> PickupView:
        """Open the door of the parcel with this code. Wrong codes count per kiosk."""
        with self._doors.lock:
            claim = self._claims.claim(code, kiosk_id)  # a plain right code: claimed, then opened (ADR 0137)
            if claim is not None:
                view = self._open_claimed(claim)
                return self.status(view.pickup_id)
            with self._doors.db.write() as s:
                outcome = self._check_code(s, code, kiosk_id)
            if isinstance(outcome, LockerError):
                raise outcome
            view = self._open_for_parcel(outcome, "pickup", "code", Actor.RESIDENT, None)
        return self.status(view.pickup_id)  # with the resident's next doors, when one code opens all

    def _check_code(self, s: Session, raw: str, kiosk_id: str) -> str | LockerError:
        """The parcel id the code opens, or the refusal; the attempt is recorded either way."""
        clock = self._doors.clock
        now = clock.now()
        cooldown = self.budget.cooldown_left(s, kiosk_id, now)
        if cooldown:
            audit(s, Actor.RESIDENT, "pickup_code", "cooling_down", target=f"kiosk:{kiosk_id}", clock=clock)
            return CoolingDown(cooldown)
        code = normalise_code(raw)
        if code is None:  # cannot match any parcel, so it tells a guesser nothing: not counted
            audit(s, Actor.RESIDENT, "pickup_code", "malformed", target=f"kiosk:{kiosk_id}", clock=clock)
            return InvalidInput("bad_code_format", f"a pickup code has {CODE_DIGITS} digits")
        parcel_id = s.scalar(select(Parcel.id).where(
            Parcel.code_hash == self._codes.digest(code), Parcel.state == "stored"))
        attempt = CodeAttempt(kiosk_id=kiosk_id, ts=now, ok=parcel_id is not None, cooldown_until=None)
        s.add(attempt)
        if parcel_id is not None:
            audit(s, Actor.RESIDENT, "pickup_code", "accepted", target=parcel_id,
                  detail={"kiosk": kiosk_id}, clock=clock)
            return parcel_id
        used = s.scalar(select(Parcel.id).where(
            Parcel.code_hash == self._codes.digest(code), Parcel.state.in_(USED_CODE_STATES)).limit(1))
        return self.budget.count_failure(s, attempt, kiosk_id, now, "pickup_code", used=used is not None)

    def with_token(self, token: str, kiosk_id: str = "kiosk") -> PickupView:
        """Open the door for a pickup QR token from parcel.deposited; each token works once."""
        doors = self._doors
        if self._tokens is None:
            raise LockerError("pickup QR codes are not available on this station")
        with doors.lock:
            try:
                with doors.db.read() as s:
                    claim = self._tokens.verify(
                        token, doors.clock.now(),
                        already_used=lambda token_id: s.get(UsedPickupToken, token_id) is not None)
            except TokenError as exc:
                with doors.db.write() as s:
                    audit(s, Actor.RESIDENT, "pickup_token", f"refused_{exc.code}",
                          target=f"kiosk:{kiosk_id}", clock=doors.clock)
                raise TokenRefused(exc.code, str(exc)) from None
            with doors.db.read() as s:
                parcel = s.get(Parcel, claim.parcel_id)
            if parcel is None or parcel.state != "stored":
                with doors.db.write() as s:
                    audit(s, Actor.RESIDENT, "pickup_token", "refused_not_stored", target=claim.parcel_id,
                          clock=doors.clock)
                raise TokenRefused("used", "this parcel has already been collected")
            view = self._open_for_parcel(parcel.id, "pickup", "token", Actor.RESIDENT, None,
                                         token_id=claim.token_id)
        return self.status(view.pickup_id)  # with the resident's next doors, when one code opens all

    def for_resident(self, resident_id: str) -> list[PickupView]:
        """Open every stored parcel of an identified resident (QR badge or iris)."""
        phone = self._resident_phone_hash(resident_id) if self._resident_phone_hash else None
        if phone is None:
            return []
        with self._doors.db.read() as s:
            parcel_ids = s.scalars(select(Parcel.id).where(Parcel.phone_hash == phone,
                                                           Parcel.state == "stored")).all()
        views = []
        with self._doors.lock:
            for parcel_id in parcel_ids:
                try:
                    views.append(self._open_for_parcel(parcel_id, "pickup", "resident",
                                                       Actor.RESIDENT, resident_id))
                except LockerError as exc:
                    log.warning("resident_pickup_door_failed", parcel_id=parcel_id, code=exc.code)
        return views

    def return_parcel(self, courier_id: str, parcel_id: str) -> PickupView:
        """Open an overdue parcel's door, or a refused one's, so a courier of the company that
        brought it can take it back (another company's parcel reads as not found, and the
        attempt is audited)."""
        settings = self._doors.settings
        with self._doors.lock:
            with self._doors.db.read() as s:
                parcel = s.get(Parcel, parcel_id)
            if parcel is not None and settings.company_of(parcel.courier_id) != settings.company_of(courier_id):
                with self._doors.db.write() as s:
                    audit(s, Actor.COURIER, "parcel_return", "refused_other_company", actor_id=courier_id,
                          target=parcel_id, clock=self._doors.clock)
                parcel = None
            if parcel is None:
                raise NotFound("no parcel with that id")
            refused = parcel.state == "refused"
            if not refused and (parcel.state != "stored" or not parcel.overdue):
                raise WrongState("only overdue or refused parcels still in the locker can be taken back")
            return self._open_for_parcel(parcel_id, "return", "courier", Actor.COURIER, courier_id)

    def _open_for_parcel(self, parcel_id: str, purpose: str, method: str, actor: Actor,
                         actor_id: str | None, *, token_id: str | None = None) -> PickupView:
        doors = self._doors
        doors.refuse_if_outbox_full()
        with doors.db.read() as s:
            parcel = s.get(Parcel, parcel_id)
            comp_row = s.get(Compartment, parcel.compartment)
        if comp_row.fault:
            raise CompartmentOutOfService(
                f"compartment {parcel.compartment} is out of service; staff have been told")
        comp = doors.layout[parcel.compartment]
        result = doors.unlock(comp)
        pending = Pending()
        with doors.db.write() as s:
            doors.audit_opening(s, actor, actor_id, comp.number, purpose, result, parcel_id=parcel_id)
            if result.opened:
                op = DoorOperation(id=new_id("pk"), parcel_id=parcel_id, compartment=comp.number,
                                   purpose=purpose, method=method, actor_id=actor_id,
                                   state="door_open", opened_at=doors.clock.now(), closed_at=None)
                s.add(op)
                s.get(Parcel, parcel_id).state = "pickup_open" if purpose == "pickup" else "return_open"
                if token_id is not None:
                    s.add(UsedPickupToken(token_id=token_id, parcel_id=parcel_id, used_at=doors.clock.now()))
                doors.mark_opened(s, comp.number, purpose, pending, parcel_id=parcel_id)
                view = pickup_view(op)
            else:
                doors.record_failed_unlock(s, comp, result, pending)
        doors.notify(pending)
        if not result.opened:
            raise doors.unlock_error(result)
        return view

    def follow_up(self, s: Session, row: Compartment, state: LockState, pending: Pending) -> bool:
        """An open pickup or return ends when its door closes or the item is gone."""
        self.settle_claim(s, row.number, state, pending)  # a claim a crash left (ADR 0137)
        op = s.scalars(select(DoorOperation).where(DoorOperation.compartment == row.number,
                                                   DoorOperation.state == "door_open")).first()
        if op is None or not (state.latch is Latch.CLOSED or state.item is False):
            return False
        self._complete(s, op, item_left=bool(state.item), pending=pending)
        return True

    def _complete(self, s: Session, op: DoorOperation, item_left: bool, pending: Pending) -> None:
        clock = self._doors.clock
        now = clock.now()
        parcel = s.get(Parcel, op.parcel_id)
        done = "collected" if op.purpose == "pickup" else "returned"
        op.state, op.closed_at = done, now
        parcel.state, parcel.closed_at = done, now
        data = {"parcel_id": parcel.id, "compartment": parcel.compartment, "method": op.method,
                "waybill": parcel.waybill, f"{done}_at": iso_utc(now), "item_left_inside": item_left}
        if op.purpose == "return":
            data["courier_id"] = op.actor_id
        # the operation record of the parcel leaving (the opening was audited when it opened)
        audit(s, Actor.RESIDENT if op.purpose == "pickup" else Actor.COURIER, op.purpose, done,
              actor_id=op.actor_id, target=parcel.id,
              detail={"compartment": parcel.compartment, "method": op.method, "waybill": parcel.waybill,
                      "item_left_inside": item_left}, clock=clock)
        record_event(s, f"parcel.{done}", data, clock=clock)
        pending.add(f"parcel.{done}", data)

    # --- a right code's claim (ADR 0137): kept apart from the paths above ------------------

    def _open_claimed(self, claim: Claim) -> PickupView:
        """Unlock the claimed door, then record how it went. The claim is already committed
        (it survives a kill); its sync to disk runs while the unlock frame goes out."""
        doors = self._doors
        comp = doors.layout[claim.compartment]
        synced = doors.db.sync_soon()
        result = doors.unlock(comp)
        try:
            synced.result()
        except OSError:  # the FULL commit below syncs the same file again
            log.exception("claim_sync_failed", pickup_id=claim.pickup_id)
        pending = Pending()
        with doors.db.write() as s:
            doors.audit_opening(s, Actor.RESIDENT, None, comp.number, "pickup", result, parcel_id=claim.parcel_id)
            op = s.get(DoorOperation, claim.pickup_id)
            if result.opened:
                op.state, op.opened_at = "door_open", doors.clock.now()
                s.get(Parcel, claim.parcel_id).state = "pickup_open"
                doors.mark_opened(s, comp.number, "pickup", pending, parcel_id=claim.parcel_id)
            else:
                op.state, op.closed_at = NOT_OPENED, doors.clock.now()
                doors.record_failed_unlock(s, comp, result, pending)
            view = pickup_view(op)
        doors.notify(pending)
        if not result.opened:
            raise doors.unlock_error(result)
        return view

    def settle_claim(self, s: Session, number: int, state: LockState, pending: Pending) -> bool:
        """A door operation still `opening`: the controller stopped between a claim and the
        record of its unlock. What the board reads now settles it: open, the pickup goes on;
        shut and empty, the parcel was taken; shut with the item inside (or no item
        sensor), the door did not open and the parcel stays stored (its code still works)."""
        ops = list(s.scalars(select(DoorOperation).where(DoorOperation.compartment == number,
                                                         DoorOperation.state == OPENING)
                             .order_by(DoorOperation.opened_at.desc())))
        if not ops or state.latch is Latch.UNKNOWN:
            return False
        clock = self._doors.clock
        op = ops[0]
        for older in ops[1:]:  # only the latest claim can be the one that opened the door
            older.state, older.closed_at = NOT_OPENED, clock.now()
        opened = state.latch is Latch.OPEN or state.item is False
        audit(s, Actor.SYSTEM, "door_open", "opened" if opened else "failed", target=f"compartment:{number}",
              detail={"reason": "pickup", "parcel_id": op.parcel_id, "pickup_id": op.id,
                      "found": state.latch.value, "item": state.item}, clock=clock)
        if state.latch is Latch.OPEN:
            op.state = "door_open"
            s.get(Parcel, op.parcel_id).state = "pickup_open"
        elif opened:
            self._complete(s, op, item_left=False, pending=pending)
        else:
            op.state, op.closed_at = NOT_OPENED, clock.now()
        log.info("pickup_claim_settled", pickup_id=op.id, compartment=number, state=op.state)
        return True


def pickup_view(op: DoorOperation, next_doors: tuple[int, ...] = ()) -> PickupView:
    return PickupView(op.id, op.parcel_id, op.compartment, op.purpose, op.state, next_doors=next_doors)
