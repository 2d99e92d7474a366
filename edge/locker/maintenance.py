"""Taking compartments out of service and back: maintenance on and off, and a technician
clearing a door fault. Doors keeps `set_maintenance` and `clear_fault` (the lock, the
layout check and notifying subscribers) and records the change here, in its transaction.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from edge.clock import Clock
from edge.locker.errors import InvalidInput
from edge.locker.models import Compartment, Parcel
from edge.locker.views import LIVE_PARCEL_STATES
from edge.storage import Actor, audit, record_event


def clean_reason(reason: str, on: bool) -> str:
    reason = (reason or "").strip()[:200]
    if on and not reason:
        raise InvalidInput("bad_reason", "say why the compartment goes out of service")
    return reason


def clear_fault(s: Session, number: int, who: str, clock: Clock) -> None:
    row = s.get(Compartment, number)
    audit(s, Actor.TECHNICIAN, "clear_fault", "ok", actor_id=who, target=f"compartment:{number}",
          detail={"fault": row.fault}, clock=clock)
    row.fault, row.fault_at = None, None


def set_maintenance(s: Session, number: int, on: bool, reason: str, actor: Actor, actor_id: str,
                    clock: Clock, notify: Callable[[str, dict[str, Any]], None]) -> dict[str, Any]:
    """A parcel already inside stays collectable: only new deposits are kept away."""
    row = s.get(Compartment, number)
    was = row.maintenance
    row.maintenance = reason if on else None
    row.maintenance_at = clock.now() if on else None
    row.maintenance_by = actor_id[:64] if on else None
    parcel_inside = s.scalar(select(func.count()).select_from(Parcel).where(
        Parcel.compartment == number, Parcel.state.in_(LIVE_PARCEL_STATES))) > 0
    audit(s, actor, "maintenance", "on" if on else "off", actor_id=actor_id,
          target=f"compartment:{number}",
          detail={"reason": reason, "was": was, "parcel_inside": parcel_inside}, clock=clock)
    data = {"compartment": number, "maintenance": on, "reason": reason or None,
            "actor": actor.value, "parcel_inside": parcel_inside}
    record_event(s, "compartment.maintenance_changed", data, clock=clock)
    notify("compartment.maintenance_changed", data)
    return {"compartment": number, "maintenance": on, "reason": reason or None,
            "parcel_inside": parcel_inside}
