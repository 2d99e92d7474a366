"""One-time identity codes (ADR 0115): the kiosk draws a 6-digit code, keeps only its keyed
hash for a few minutes, and sends it sealed to the platform in `identity.otp_requested`
for the platform to text to the resident's phone. The resident types it: a right code
raises the visit to HIGH assurance.

Nothing lets anyone recover the code: the box keeps HMAC-SHA256(otp key, resident id and
code), with the key in its own 0600 file; the event carries it only sealed to the
platform's X25519 key (edge/identity/sealing.py); the audit names the resident and the
result, never the code. Wrong codes are limited per kiosk and per resident; a cooldown
also ends the live code, so one code never gets more than the limit's guesses.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from edge.assurance import Assurance
from edge.clock import Clock, iso_utc
from edge.identity.models import OneTimeCodeRow
from edge.storage import Actor, Database, Priority, audit, record_event
from edge.storage.attempts import AttemptLimiter, AttemptPolicy

OTP_DIGITS = 6
OTP_TTL_S = 300
RESEND_AFTER_S = 60  # no texting a neighbour's phone in a loop
OTP_EVENT = "identity.otp_requested"
_OTP_SHAPE = re.compile(rf"^[0-9]{{{OTP_DIGITS}}}$")  # ASCII digits only

Sealer = Callable[[dict[str, Any], str], str]  # (secret, message_id) -> sealed text


class OtpError(Exception):
    """A refused request or code; `.code` for the UI, `.details` for the API."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class OneTimeCodes:
    """Owns the one-time code rows (`identity_otp`) and their attempts (`login_attempts`
    under "otp-kiosk:<kiosk>" and "otp-resident:<resident id>")."""

    def __init__(self, db: Database, clock: Clock, key: bytes, seal: Sealer | None,
                 policy: AttemptPolicy, ttl_s: float = OTP_TTL_S) -> None:
        if len(key) < 16:
            raise ValueError("the one-time code key must be at least 16 bytes")
        self._db = db
        self._clock = clock
        self._key = key
        self._seal = seal
        self._limiter = AttemptLimiter(policy)
        self._ttl = timedelta(seconds=ttl_s)

    @property
    def available(self) -> bool:
        """Without the platform's key a code could not reach the resident sealed."""
        return self._seal is not None

    def request(self, resident_id: str, kiosk_id: str) -> datetime:
        """Draw a code for the resident and queue it, sealed, for the platform to text.
        Returns when it expires. Refused while a cooldown runs or a code was just sent."""
        if self._seal is None:
            raise OtpError("no_platform_key", "codes by SMS need the platform's key on this station")
        with self._db.write() as s:
            now = self._clock.now()
            refusal = self._refusal_to_send(s, resident_id, kiosk_id, now)
            if refusal is None:
                code = f"{secrets.randbelow(10 ** OTP_DIGITS):0{OTP_DIGITS}d}"
                expires_at = now + self._ttl
                row = s.get(OneTimeCodeRow, resident_id)
                if row is None:
                    row = OneTimeCodeRow(resident_id=resident_id)
                    s.add(row)
                row.code_hash, row.created_at, row.expires_at, row.used_at = (
                    self._digest(resident_id, code), now, expires_at, None)
                message_id = str(uuid.uuid4())
                # The code exists in clear only in this frame; it leaves sealed.
                data = {"resident_id": resident_id, "kiosk_id": kiosk_id, "expires_at": iso_utc(expires_at),
                        "secret": self._seal({"otp": code}, message_id)}
                del code
                # A person waits at the screen for this text: it overtakes routine events.
                record_event(s, OTP_EVENT, data, clock=self._clock, message_id=message_id,
                             priority=Priority.REPLY)
                audit(s, Actor.RESIDENT, "identity_otp", "sent", actor_id=resident_id,
                      target=f"kiosk:{kiosk_id}", detail={"assurance": Assurance.LOW.value}, clock=self._clock)
        if refusal is not None:
            raise refusal
        return expires_at

    def verify(self, resident_id: str, typed: str, kiosk_id: str) -> Assurance:
        """HIGH when `typed` is the resident's live code (used once); else OtpError:
        wrong_otp (with attempts_left), cooling_down (seconds_left), otp_expired, no_otp."""
        keys = (f"otp-kiosk:{kiosk_id}"[:96], f"otp-resident:{resident_id}"[:96])
        with self._db.write() as s:
            now = self._clock.now()
            outcome = self._check(s, keys, resident_id, typed, kiosk_id, now)
        if isinstance(outcome, OtpError):
            raise outcome
        return outcome

    def _check(self, s: Any, keys: tuple[str, str], resident_id: str, typed: str, kiosk_id: str,
               now: datetime) -> Assurance | OtpError:
        def note(result: str, **detail: Any) -> None:
            audit(s, Actor.RESIDENT, "identity_otp", result, actor_id=resident_id, target=f"kiosk:{kiosk_id}",
                  detail={"assurance": Assurance.LOW.value, **detail}, clock=self._clock)

        cooling = self._limiter.cooldown_left(s, keys, now)
        if cooling:
            note("cooling_down", seconds_left=cooling)
            return OtpError("cooling_down", f"too many wrong codes; try again in {cooling} s", seconds_left=cooling)
        row = s.get(OneTimeCodeRow, resident_id)
        if row is None or row.used_at is not None:
            note("no_code")
            return OtpError("no_otp", "ask for a code first")
        if row.expires_at <= now:
            row.used_at = now
            note("expired")
            return OtpError("otp_expired", "that code has expired; ask for a new one")
        code = re.sub(r"\s", "", typed) if isinstance(typed, str) else ""
        if _OTP_SHAPE.match(code) and hmac.compare_digest(row.code_hash, self._digest(resident_id, code)):
            row.used_at = now
            self._limiter.succeeded(s, keys, now)
            audit(s, Actor.RESIDENT, "identity_otp", "accepted", actor_id=resident_id, target=f"kiosk:{kiosk_id}",
                  detail={"assurance": Assurance.HIGH.value}, clock=self._clock)
            return Assurance.HIGH
        verdict = self._limiter.failed(s, keys, now)
        if verdict.cooldown_s:
            row.used_at = now  # this code is spent: after the cooldown, a new one is needed
            note("wrong_cooldown_started", cooldown_s=verdict.cooldown_s)
            return OtpError("cooling_down", f"too many wrong codes; try again in {verdict.cooldown_s} s",
                            seconds_left=verdict.cooldown_s)
        note("wrong", attempts_left=verdict.attempts_left)
        return OtpError("wrong_otp", f"that code is not right; {verdict.attempts_left} tries left",
                        attempts_left=verdict.attempts_left)

    def _refusal_to_send(self, s: Any, resident_id: str, kiosk_id: str, now: datetime) -> OtpError | None:
        keys = (f"otp-kiosk:{kiosk_id}"[:96], f"otp-resident:{resident_id}"[:96])
        cooling = self._limiter.cooldown_left(s, keys, now)
        if cooling:
            return OtpError("cooling_down", f"too many wrong codes; try again in {cooling} s", seconds_left=cooling)
        row = s.get(OneTimeCodeRow, resident_id)
        if row is not None and row.used_at is None and now - row.created_at < timedelta(seconds=RESEND_AFTER_S):
            wait = int(RESEND_AFTER_S - (now - row.created_at).total_seconds()) + 1
            return OtpError("otp_too_soon", f"a code was just sent; ask again in {wait} s", seconds_left=wait)
        return None

    def _digest(self, resident_id: str, code: str) -> str:
        return hmac.new(self._key, f"{resident_id}\x00{code}".encode(), hashlib.sha256).hexdigest()
