"""失物招领: residents' "I found something" reports, and found items staff publish to a station.

The kiosk already knows found items: notices of kind `found` in its catalogue (ADR 0127:
title = the item, body = where it was found, office = where to claim it). Publishing one
adds such a notice to the platform's copy of the station's catalogue and queues
catalogue.sync (catalogue.store_and_queue); marking it returned takes the notice out again
the same way, so it disappears from the kiosk's list. `found_items` keeps the platform's
record (who published, who handed it back, when), which a catalogue alone would forget.

A resident's report is a request of category `found_item`, followed up (and answered in
我的服务) like any request; a published item may name the report it came from."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from fleet.console import followup
from fleet.console.accounts import Staff, can_see_station, visible_stations_sql
from fleet.console.catalogue import store_and_queue
from fleet.console.followup import NotFound, Refused
from fleet.mqtt import iso

FOUND_ITEM = "found_item"
MAX_ITEM = 80
MAX_WHERE = 500
MAX_CLAIM_AT = 80
MAX_CONTACT = 32
MAX_NOTE = 200


@dataclass(frozen=True)
class FoundItem:
    id: str
    site_id: str
    device_id: str
    item: str
    found_where: str
    claim_at: str
    contact: str
    report_request_id: str | None
    published_by: str
    published_at: datetime
    returned_at: datetime | None
    returned_by: str | None
    returned_note: str | None


def reports(conn: psycopg.Connection, staff: Staff, now: datetime) -> list[dict[str, Any]]:
    """Residents' "I found something" from the staff member's stations, newest first."""
    return followup.help_requests(conn, staff, now, category=FOUND_ITEM)


def items(conn: psycopg.Connection, staff: Staff, *, returned: bool, limit: int = 200) -> list[FoundItem]:
    """Published items still on the kiosks (returned=False), or the ones handed back, newest first."""
    rows = conn.execute(
        "SELECT f.id, f.site_id, f.device_id, f.item, f.found_where, f.claim_at, f.contact, "
        "f.report_request_id, f.published_by, f.published_at, f.returned_at, f.returned_by, f.returned_note "
        "FROM found_items f JOIN devices dv ON dv.site_id = f.site_id AND dv.device_id = f.device_id "
        f"WHERE {visible_stations_sql()} AND (f.returned_at IS NOT NULL) = %(returned)s "
        "ORDER BY COALESCE(f.returned_at, f.published_at) DESC LIMIT %(limit)s",
        {"unit": staff.org_unit_id, "returned": returned, "limit": limit}).fetchall()
    return [FoundItem(*row) for row in rows]


def published_reports(conn: psycopg.Connection, staff: Staff) -> set[tuple[str, str, str]]:
    """(site_id, device_id, request_id) of the reports already published as found items."""
    rows = conn.execute(
        "SELECT f.site_id, f.device_id, f.report_request_id FROM found_items f JOIN devices dv "
        "ON dv.site_id = f.site_id AND dv.device_id = f.device_id "
        f"WHERE f.report_request_id IS NOT NULL AND {visible_stations_sql()}", {"unit": staff.org_unit_id}).fetchall()
    return {tuple(row) for row in rows}


def publish(conn: psycopg.Connection, staff: Staff, site_id: str, device_id: str, *, item: str,
            found_where: str, claim_at: str, contact: str = "", report_request_id: str | None = None,
            now: datetime) -> FoundItem:
    """Put a found item on one station's kiosk (失物招领): a `found` notice in its catalogue,
    sent whole with catalogue.sync in the same transaction as the record."""
    item, found_where, claim_at, contact = (v.strip() for v in (item, found_where, claim_at, contact))
    report_request_id = (report_request_id or "").strip() or None
    if not item or not found_where or not claim_at:
        raise Refused("a found item needs what it is, where it was found and where to claim it")
    if len(item) > MAX_ITEM or len(found_where) > MAX_WHERE or len(claim_at) > MAX_CLAIM_AT \
            or len(contact) > MAX_CONTACT:
        raise Refused("too long: the item up to %(item)d characters, where it was found up to %(where)d, "
                      "where to claim it up to %(claim)d, the contact up to %(contact)d",
                      item=MAX_ITEM, where=MAX_WHERE, claim=MAX_CLAIM_AT, contact=MAX_CONTACT)
    with conn.transaction():
        if not can_see_station(conn, staff, site_id, device_id):
            raise NotFound(f"{site_id}/{device_id}")
        catalogue = _locked_catalogue(conn, site_id, device_id)
        if catalogue is None:
            station = f"{site_id}/{device_id}"
            raise Refused("%(station)s has no catalogue on the platform yet: send it one first", station=station)
        if report_request_id is not None:
            report = conn.execute(
                "SELECT data->>'category' FROM help_requests WHERE site_id = %s AND device_id = %s "
                "AND request_id = %s", (site_id, device_id, report_request_id)).fetchone()
            if report is None or report[0] != FOUND_ITEM:
                raise NotFound(report_request_id)
        found = FoundItem(f"found-{uuid.uuid4().hex[:16]}", site_id, device_id, item, found_where, claim_at,
                          contact, report_request_id, staff.display_name, now, None, None, None)
        notice: dict[str, Any] = {"id": found.id, "kind": "found", "title": {"zh": item},
                                  "body": {"zh": found_where}, "office": {"zh": claim_at},
                                  "published_at": iso(now)}
        if contact:
            notice["contact"] = contact
        store_and_queue(conn, staff, site_id, device_id,
                        {**catalogue, "notices": [notice, *catalogue.get("notices", [])]}, now)
        conn.execute(
            "INSERT INTO found_items (id, site_id, device_id, item, found_where, claim_at, contact, "
            "report_request_id, published_by, published_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (found.id, site_id, device_id, item, found_where, claim_at, contact, report_request_id,
             staff.display_name, now))
    return found


def mark_returned(conn: psycopg.Connection, staff: Staff, item_id: str, note: str | None,
                  now: datetime) -> bool:
    """The owner has it back: record who handed it over and take the notice off the station's
    kiosk (catalogue.sync without it). Returns whether a catalogue.sync was queued (not when
    someone already removed the notice by editing the catalogue)."""
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE:
        raise Refused("a note has at most %(limit)d characters", limit=MAX_NOTE)
    with conn.transaction():
        row = conn.execute("SELECT site_id, device_id FROM found_items WHERE id = %s", (item_id,)).fetchone()
        if row is None or not can_see_station(conn, staff, row[0], row[1]):
            raise NotFound(item_id)
        site_id, device_id = row[0], row[1]
        catalogue = _locked_catalogue(conn, site_id, device_id)
        # Re-read under the station's lock: two staff pressing "returned" at once send one sync.
        if conn.execute("SELECT returned_at FROM found_items WHERE id = %s", (item_id,)).fetchone()[0]:
            raise Refused("this item is already marked returned")
        conn.execute("UPDATE found_items SET returned_at = %s, returned_by = %s, returned_note = %s WHERE id = %s",
                     (now, staff.display_name, note, item_id))
        notices = (catalogue or {}).get("notices", [])
        kept = [n for n in notices if n.get("id") != item_id]
        if catalogue is None or len(kept) == len(notices):
            return False
        store_and_queue(conn, staff, site_id, device_id, {**catalogue, "notices": kept}, now)
    return True


def _locked_catalogue(conn: psycopg.Connection, site_id: str, device_id: str) -> dict[str, Any] | None:
    """The station's catalogue, with its devices row locked: catalogue changes of one station
    (notices, edits, found items) take turns, so none overwrites another's version."""
    conn.execute("SELECT 1 FROM devices WHERE site_id = %s AND device_id = %s FOR UPDATE",
                 (site_id, device_id))
    row = conn.execute("SELECT catalogue FROM station_catalogues WHERE site_id = %s AND device_id = %s",
                       (site_id, device_id)).fetchone()
    return row[0] if row else None
