"""The audit trail: one row per door opening, pickup attempt or privileged action."""
from __future__ import annotations

import enum
import json
from typing import Any

from sqlalchemy.orm import Session

from edge.clock import Clock, SystemClock
from edge.ops.metrics import count_audit, count_audit_after_commit
from edge.storage.db import ClaimTransaction
from edge.storage.models import AuditEntry
from edge.storage.outbox import db_time

_INSERT_SQL = ("INSERT INTO audit (ts, actor, actor_id, action, target, result, detail) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)")


class Actor(str, enum.Enum):
    RESIDENT = "resident"
    COURIER = "courier"
    TECHNICIAN = "technician"
    REMOTE = "remote"  # the operations centre, through a cloud command
    SYSTEM = "system"


_system_clock = SystemClock()


def audit(
    session: Session,
    actor: Actor,
    action: str,
    result: str,
    *,
    actor_id: str | None = None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    clock: Clock = _system_clock,
) -> AuditEntry:
    entry = AuditEntry(
        ts=clock.now(),
        actor=actor.value,
        actor_id=actor_id,
        action=action,
        target=target,
        result=result,
        detail=detail or {},
    )
    session.add(entry)
    count_audit_after_commit(session, actor.value, action, result)  # metrics (ADR 0152)
    return entry


def audit_now(
    transaction: ClaimTransaction,
    actor: Actor,
    action: str,
    result: str,
    *,
    actor_id: str | None = None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    clock: Clock = _system_clock,
) -> None:
    """`audit()` in a claim transaction (a door opening's claim, ADR 0137): the same row,
    stored exactly as the ORM stores it, counted in the metrics once committed."""
    transaction.execute(_INSERT_SQL, (db_time(clock.now()), actor.value, actor_id, action, target, result,
                                      json.dumps(detail or {})))
    transaction.after_commit(lambda: count_audit(actor.value, action, result))  # metrics (ADR 0152)
