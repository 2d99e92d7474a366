"""Writing events for the cloud. The cloud bridge drains what is written here.

Call `record_event` inside the same `db.write()` session as the state change it reports:
both commit together or neither does.
"""
from __future__ import annotations

import enum
import json
import uuid
from typing import Any

from sqlalchemy.orm import Session

from edge.clock import Clock, SystemClock
from edge.storage.models import OutboxEvent


class Priority(enum.IntEnum):
    """Lower goes first. Emergencies and command replies overtake any backlog."""

    EMERGENCY = 0
    REPLY = 1
    NORMAL = 5
    TELEMETRY = 9  # low value: the only class the bridge may drop when space runs out


_system_clock = SystemClock()


def record_event(
    session: Session,
    type: str,
    data: dict[str, Any],
    *,
    priority: Priority = Priority.NORMAL,
    clock: Clock = _system_clock,
) -> OutboxEvent:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    event = OutboxEvent(
        message_id=str(uuid.uuid4()),
        type=type,
        ts=clock.now(),
        priority=int(priority),
        data=data,
        size_bytes=len(body.encode()),
    )
    session.add(event)
    session.flush()  # assigns seq now, inside the caller's transaction
    return event
