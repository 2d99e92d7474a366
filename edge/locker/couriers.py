"""Courier log-in: a typed or scanned courier code names a courier and their company, within
attempt limits per kiosk and per code (ADR 0115). Every attempt is audited, never the code."""
from __future__ import annotations

from edge.locker.codes import PickupCodes
from edge.locker.doors import Doors
from edge.locker.errors import CoolingDown, LockerError, UnknownCourier
from edge.settings import CourierEntry
from edge.storage import Actor, audit
from edge.storage.attempts import AttemptLimiter, AttemptPolicy


class CourierLogins:
    """Owns the courier log-in attempts (rows in `login_attempts` under "courier-kiosk:<id>"
    and "courier-code:<keyed hash>") and which company a courier works for."""

    def __init__(self, doors: Doors, codes: PickupCodes) -> None:
        self._doors = doors
        self._codes = codes

    def log_in(self, code: str, kiosk_id: str) -> CourierEntry:
        """The courier a code names; a wrong code spends the kiosk's and the code's budget,
        and while either cools down even the right code is refused (CoolingDown)."""
        doors = self._doors
        typed = code.strip() if isinstance(code, str) else ""
        # A keyed hash: the attempt rows must not let anyone read back what was typed.
        keys = (f"courier-kiosk:{kiosk_id}"[:96], f"courier-code:{self._codes.digest('courier:' + typed)[:40]}")
        limiter = AttemptLimiter(self._policy())
        with doors.db.write() as s:
            now = doors.clock.now()
            outcome: CourierEntry | LockerError
            cooling = limiter.cooldown_left(s, keys, now)
            entry = doors.settings.courier_by_code(typed) if typed else None
            if cooling:
                outcome = CoolingDown(cooling)
                audit(s, Actor.COURIER, "courier_login", "cooling_down", target=f"kiosk:{kiosk_id}",
                      detail={"seconds_left": cooling}, clock=doors.clock)
            elif entry is None:
                verdict = limiter.failed(s, keys, now)
                if verdict.cooldown_s:
                    outcome = CoolingDown(verdict.cooldown_s)
                    result, detail = "refused_cooldown_started", {"cooldown_s": verdict.cooldown_s}
                else:
                    outcome = UnknownCourier("that courier code is not known at this station",
                                             attempts_left=verdict.attempts_left)
                    result, detail = "refused", {"attempts_left": verdict.attempts_left}
                audit(s, Actor.COURIER, "courier_login", result, target=f"kiosk:{kiosk_id}",
                      detail=detail, clock=doors.clock)
            else:
                limiter.succeeded(s, keys, now)
                outcome = entry
                audit(s, Actor.COURIER, "courier_login", "ok", actor_id=entry.id, target=f"kiosk:{kiosk_id}",
                      detail={"company": entry.company_name}, clock=doors.clock)
        if isinstance(outcome, LockerError):
            raise outcome
        return outcome

    def company_of(self, courier_id: str) -> str:
        return self._doors.settings.company_of(courier_id)

    def _policy(self) -> AttemptPolicy:
        """Read at each attempt: config.set changes the live settings in place."""
        settings = self._doors.settings
        return AttemptPolicy(settings.courier_login_limit, settings.courier_login_window_s,
                             settings.courier_login_cooldown_s)
