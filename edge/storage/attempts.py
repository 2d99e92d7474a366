"""Attempt limits for secrets typed at the station (courier codes, one-time identity codes).

Each attempt is recorded under one or more keys, e.g. "courier-kiosk:<kiosk>" and
"courier-code:<keyed hash of the code>": failures within the window spend each key's budget,
and a key whose budget is spent starts a cooldown during which every attempt that touches
that key is refused, the right secret included (ADR 0115). Rows live in SQLite, so a
restart does not hand a guesser a fresh budget. Keys never hold a secret in clear: callers
pass keyed hashes.

Pickup codes keep their own table and budget (edge/locker/pickups.py, ADR 0022).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Boolean, Index, Integer, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from edge.storage.models import Base


class LoginAttempt(Base):
    """One attempt under one key; `cooldown_until` is set on the failure that spent the budget."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_key_ts", "key", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(96))
    ts: Mapped[datetime]
    ok: Mapped[bool] = mapped_column(Boolean)
    cooldown_until: Mapped[datetime | None]


@dataclass(frozen=True)
class AttemptPolicy:
    limit: int  # failures allowed in the window before a cooldown
    window_s: float
    cooldown_s: float


@dataclass(frozen=True)
class Verdict:
    """The outcome of counting one failure: attempts left, or the cooldown it started."""

    attempts_left: int
    cooldown_s: int  # > 0 when this failure (or an earlier one) started a cooldown


class AttemptLimiter:
    """Counts attempts per key in the caller's transaction."""

    def __init__(self, policy: AttemptPolicy) -> None:
        self.policy = policy

    def cooldown_left(self, s: Session, keys: Sequence[str], now: datetime) -> int:
        """Whole seconds until every key's cooldown is over (0: attempts may go on)."""
        until = s.scalar(select(func.max(LoginAttempt.cooldown_until)).where(LoginAttempt.key.in_(keys)))
        return max(0, int((until - now).total_seconds() + 0.999)) if until and until > now else 0

    def succeeded(self, s: Session, keys: Sequence[str], now: datetime) -> None:
        for key in keys:
            s.add(LoginAttempt(key=key, ts=now, ok=True, cooldown_until=None))

    def failed(self, s: Session, keys: Sequence[str], now: datetime) -> Verdict:
        """Record a failure under every key; a key with no budget left starts its cooldown."""
        rows = [LoginAttempt(key=key, ts=now, ok=False, cooldown_until=None) for key in keys]
        s.add_all(rows)
        s.flush()
        left = self.policy.limit
        for row in rows:
            key_left = self.policy.limit - self._failures(s, row.key, now)
            if key_left <= 0:
                row.cooldown_until = now + timedelta(seconds=self.policy.cooldown_s)
            left = min(left, key_left)
        if left <= 0:
            return Verdict(0, int(self.policy.cooldown_s))
        return Verdict(left, 0)

    def _failures(self, s: Session, key: str, now: datetime) -> int:
        """Failures in the window, not counting those before the key's last cooldown ended."""
        since = now - timedelta(seconds=self.policy.window_s)
        last_cooldown = s.scalar(select(func.max(LoginAttempt.cooldown_until)).where(LoginAttempt.key == key))
        if last_cooldown is not None and last_cooldown > since:
            since = last_cooldown
        return s.scalar(select(func.count()).select_from(LoginAttempt).where(
            LoginAttempt.key == key, LoginAttempt.ts > since, LoginAttempt.ts <= now,
            LoginAttempt.ok.is_(False))) or 0
