"""The audit trail: one row per door opening, pickup attempt or privileged action."""
from __future__ import annotations

import enum
from typing import Any

from sqlalchemy.orm import Session

from edge.clock import Clock, SystemClock
from edge.ops.metrics import count_audit_after_commit
from edge.storage.models import AuditEntry


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
