"""What staff do in the console, without Flask: the station list, booking decisions, help
requests worked through their states, and escalation of requests nobody has taken up.

Every action checks that the station is the staff member's (their unit or below) and
queues its command to the station in the same transaction as the state change.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from fleet.commands import queue_command
from fleet.console.accounts import Staff, can_see_station, visible_stations_sql

ESCALATE_TO_STREET = timedelta(hours=24)
ESCALATE_TO_DISTRICT = timedelta(hours=48)
# A request is "handled" once someone is working on it; until then its clock runs.
UNHANDLED = ("new", "received")
NEXT_STATUSES = {
    "new": ("received", "in_progress", "done", "closed"),
    "received": ("in_progress", "done", "closed"),
    "in_progress": ("done", "closed"),
    "done": ("closed",),
    "closed": (),
}
MAX_REPLY = 2000


class NotFound(LookupError):
    """Not there, or not this staff member's to see (the same answer for both)."""


class Refused(ValueError):
    """Refused in staff's words: `message` is an English message id with %(name)s fields
    from `params`, which the console translates (str() is the English text)."""

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params


@dataclass(frozen=True)
class StationRow:
    site_id: str
    device_id: str
    online: bool | None
    ingest_lag_s: float | None  # newest event received minus its station time
    open_gaps: int
    door_faults: int
    in_maintenance: int


def stations(conn: psycopg.Connection, staff: Staff) -> list[StationRow]:
    rows = conn.execute(
        "SELECT dv.site_id, dv.device_id, dv.online, "
        "EXTRACT(EPOCH FROM dv.last_received_at - dv.last_event_ts), "
        "(SELECT count(*) FROM gaps g WHERE g.site_id = dv.site_id AND g.device_id = dv.device_id "
        " AND g.closed_at IS NULL), dv.compartments "
        f"FROM devices dv WHERE {visible_stations_sql()} ORDER BY dv.site_id, dv.device_id",
        {"unit": staff.org_unit_id}).fetchall()
    return [StationRow(site, device, online, float(lag) if lag is not None else None, gaps,
                       *_compartment_counts(snapshot)) for site, device, online, lag, gaps, snapshot in rows]


def _compartment_counts(snapshot: dict[str, Any] | None) -> tuple[int, int]:
    compartments = ((snapshot or {}).get("data") or {}).get("compartments") or []
    uses = [c.get("use") for c in compartments if isinstance(c, dict)]
    return uses.count("fault"), uses.count("disabled")


# -- bookings ---------------------------------------------------------------------------
def pending_bookings(conn: psycopg.Connection, staff: Staff) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT b.booking_id, b.site_id, b.device_id, b.data, b.requested_at FROM bookings b "
        "JOIN devices dv ON dv.site_id = b.site_id AND dv.device_id = b.device_id "
        f"WHERE b.state = 'pending' AND {visible_stations_sql()} ORDER BY b.requested_at",
        {"unit": staff.org_unit_id}).fetchall()
    return [{"booking_id": r[0], "site_id": r[1], "device_id": r[2], "data": r[3], "requested_at": r[4]}
            for r in rows]


def decide_booking(conn: psycopg.Connection, staff: Staff, booking_id: str, approve: bool,
                   reason: str | None, now: datetime) -> None:
    with conn.transaction():
        row = conn.execute("SELECT site_id, device_id, state FROM bookings WHERE booking_id = %s FOR UPDATE",
                           (booking_id,)).fetchone()
        if row is None or not can_see_station(conn, staff, row[0], row[1]):
            raise NotFound(booking_id)
        if row[2] != "pending":
            raise Refused("this booking is already %(state)s", state=row[2])
        decision = "approved" if approve else "rejected"
        reason = (reason or "").strip()[:500] or None
        conn.execute("UPDATE bookings SET state = %s, reason = %s, decided_by = %s, decided_at = %s "
                     "WHERE booking_id = %s", (decision, reason, staff.username, now, booking_id))
        queue_command(conn, "booking.decision",
                      {"booking_id": booking_id, "decision": decision, "reason": reason},
                      site_id=row[0], device_id=row[1], transaction_id=f"booking-{booking_id}", now=now)


# -- help requests ------------------------------------------------------------------------
def escalation_due(submitted_at: datetime, status: str, now: datetime) -> str | None:
    """Where an unhandled request belongs by its age: None, 'street' (24 h), 'district' (48 h)."""
    if status not in UNHANDLED:
        return None
    age = now - submitted_at
    if age >= ESCALATE_TO_DISTRICT:
        return "district"
    if age >= ESCALATE_TO_STREET:
        return "street"
    return None


def escalate(conn: psycopg.Connection, now: datetime) -> int:
    """Record the escalations now due (idempotent; the console runs it every minute and on
    each view of the requests). Returns how many requests moved up a level."""
    with conn.transaction():
        moved = conn.execute(
            "UPDATE help_requests SET escalated_to = CASE WHEN submitted_at <= %(district)s "
            "THEN 'district' ELSE 'street' END, escalated_at = %(now)s "
            "WHERE status IN ('new', 'received') AND submitted_at <= %(street)s AND "
            "escalated_to IS DISTINCT FROM (CASE WHEN submitted_at <= %(district)s THEN 'district' ELSE 'street' END)",
            {"now": now, "street": now - ESCALATE_TO_STREET, "district": now - ESCALATE_TO_DISTRICT}).rowcount
    return moved


def help_requests(conn: psycopg.Connection, staff: Staff, now: datetime, *,
                  category: str | None = None,
                  exclude: tuple[str, ...] = (),
                  station: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """The staff member's requests, newest first; `overdue` (red) once unhandled for 24 h;
    `escalated_here` when the escalation reached this staff member's level. `category`
    keeps only that one (request.submitted's category), `exclude` leaves those out: letters and
    found-item reports have their own pages (mailbox.py, lost_found.py); `station` is one
    (site_id, device_id) of theirs."""
    where, params = [visible_stations_sql()], {"unit": staff.org_unit_id}
    if category is not None:  # help_requests_category_time serves this, newest first
        where.append("r.data->>'category' = %(category)s")
        params["category"] = category
    if exclude:
        where.append("COALESCE(r.data->>'category', '') <> ALL(%(exclude)s)")
        params["exclude"] = list(exclude)
    if station is not None:
        where.append("r.site_id = %(site)s AND r.device_id = %(device)s")
        params.update(site=station[0], device=station[1])
    rows = conn.execute(
        "SELECT r.site_id, r.device_id, r.request_id, r.data, r.submitted_at, r.status, r.escalated_to, "
        "(SELECT u.reply FROM help_request_updates u WHERE u.site_id = r.site_id AND u.device_id = r.device_id "
        " AND u.request_id = r.request_id AND u.reply IS NOT NULL ORDER BY u.id DESC LIMIT 1) "
        "FROM help_requests r JOIN devices dv ON dv.site_id = r.site_id AND dv.device_id = r.device_id "
        f"WHERE {' AND '.join(where)} ORDER BY r.submitted_at DESC LIMIT 500", params).fetchall()
    return [_request_row(r, staff, now) for r in rows]


def help_request(conn: psycopg.Connection, staff: Staff, site_id: str, device_id: str, request_id: str,
                 now: datetime) -> dict[str, Any]:
    """One request with its updates (oldest first) under `updates`; NotFound when not the
    staff member's to see."""
    if not can_see_station(conn, staff, site_id, device_id):
        raise NotFound(request_id)
    row = conn.execute(
        "SELECT r.site_id, r.device_id, r.request_id, r.data, r.submitted_at, r.status, r.escalated_to, "
        "(SELECT u.reply FROM help_request_updates u WHERE u.site_id = r.site_id AND u.device_id = r.device_id "
        " AND u.request_id = r.request_id AND u.reply IS NOT NULL ORDER BY u.id DESC LIMIT 1) "
        "FROM help_requests r WHERE r.site_id = %s AND r.device_id = %s AND r.request_id = %s",
        (site_id, device_id, request_id)).fetchone()
    if row is None:
        raise NotFound(request_id)
    updates = conn.execute(
        "SELECT status, reply, staff, at FROM help_request_updates WHERE site_id = %s AND device_id = %s "
        "AND request_id = %s ORDER BY id", (site_id, device_id, request_id)).fetchall()
    return {**_request_row(row, staff, now),
            "updates": [{"status": u[0], "reply": u[1], "staff": u[2], "at": u[3]} for u in updates]}


def _request_row(r: tuple, staff: Staff, now: datetime) -> dict[str, Any]:
    return {"site_id": r[0], "device_id": r[1], "request_id": r[2], "data": r[3], "submitted_at": r[4],
            "status": r[5], "escalated_to": r[6], "last_reply": r[7],
            "overdue": escalation_due(r[4], r[5], now) is not None,
            "escalated_here": r[6] is not None and r[6] == staff.level,
            "next_statuses": NEXT_STATUSES[r[5]]}


def update_request(conn: psycopg.Connection, staff: Staff, site_id: str, device_id: str, request_id: str,
                   status: str, reply: str | None, now: datetime) -> None:
    reply = (reply or "").strip() or None
    if reply is not None and len(reply) > MAX_REPLY:
        raise Refused("a reply has at most %(limit)d characters", limit=MAX_REPLY)
    with conn.transaction():
        row = conn.execute("SELECT status FROM help_requests WHERE site_id = %s AND device_id = %s "
                           "AND request_id = %s FOR UPDATE", (site_id, device_id, request_id)).fetchone()
        if row is None or not can_see_station(conn, staff, site_id, device_id):
            raise NotFound(request_id)
        if status != row[0] and status not in NEXT_STATUSES[row[0]]:
            raise Refused("a request that is %(state)s cannot become %(status)s", state=row[0], status=status)
        if status == row[0] and reply is None:
            raise Refused("nothing to send: the state is unchanged and there is no reply")
        update_id = conn.execute(
            "INSERT INTO help_request_updates (site_id, device_id, request_id, status, reply, staff, transaction_id, at) "
            "VALUES (%s, %s, %s, %s, %s, %s, '', %s) RETURNING id",
            (site_id, device_id, request_id, status, reply, staff.display_name, now)).fetchone()[0]
        transaction_id = f"request-{request_id}-{update_id}"
        conn.execute("UPDATE help_request_updates SET transaction_id = %s WHERE id = %s", (transaction_id, update_id))
        conn.execute("UPDATE help_requests SET status = %s, updated_at = %s WHERE site_id = %s AND device_id = %s "
                     "AND request_id = %s", (status, now, site_id, device_id, request_id))
        queue_command(conn, "request.update", {"request_id": request_id, "status": status,
                                               "reply": reply, "staff": staff.display_name},
                      site_id=site_id, device_id=device_id, transaction_id=transaction_id, now=now)
