"""Editing a station's catalogue and publishing notices, without Flask.

The edge replaces its catalogue whole on `catalogue.sync`, so the platform keeps each
station's current catalogue; an edit or a new notice changes that copy, gives it a new
version and queues the whole catalogue for the station (same transaction)."""
from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import psycopg

from cloud_bridge import contract
from fleet.commands import queue_command
from fleet.console.accounts import Staff, can_see_station, visible_stations_sql
from fleet.console.followup import NotFound, Refused
from fleet.mqtt import iso

MAX_NOTICE_TITLE = 80
MAX_NOTICE_BODY = 2000


def catalogue_of(conn: psycopg.Connection, staff: Staff, site_id: str, device_id: str) -> dict[str, Any] | None:
    if not can_see_station(conn, staff, site_id, device_id):
        raise NotFound(f"{site_id}/{device_id}")
    row = conn.execute("SELECT catalogue FROM station_catalogues WHERE site_id = %s AND device_id = %s",
                       (site_id, device_id)).fetchone()
    return row[0] if row else None


def parse_catalogue(text: str) -> dict[str, Any]:
    """A catalogue typed or pasted by staff, checked against the contract; Refused says why."""
    try:
        catalogue = json.loads(text)
    except ValueError as exc:
        raise Refused("not JSON: %(error)s", error=str(exc)) from None
    if not isinstance(catalogue, dict):
        raise Refused("a catalogue is a JSON object")
    return catalogue


def save_catalogue(conn: psycopg.Connection, staff: Staff, site_id: str, device_id: str,
                   catalogue: dict[str, Any], now: datetime) -> str:
    """Store a new version and queue catalogue.sync; returns the version."""
    with conn.transaction():
        if not can_see_station(conn, staff, site_id, device_id):
            raise NotFound(f"{site_id}/{device_id}")
        return store_and_queue(conn, staff, site_id, device_id, catalogue, now)


def store_and_queue(conn: psycopg.Connection, staff: Staff, site_id: str, device_id: str,
                     catalogue: dict[str, Any], now: datetime) -> str:
    """Store `catalogue` as the station's new version and queue its catalogue.sync; the caller
    holds the transaction and has checked the station. Returns the version."""
    version = f"platform-{iso(now)}-{uuid.uuid4().hex[:6]}"
    catalogue = {**catalogue, "version": version}
    probe = {"message_id": str(uuid.uuid4()), "type": "catalogue.sync", "ts": iso(now),
             "transaction_id": "probe", "data": catalogue}
    problems = contract.errors("cmd.catalogue.sync", probe)
    if problems:
        raise Refused("the catalogue does not match the contract: %(problem)s", problem=problems[0])
    conn.execute(
        "INSERT INTO station_catalogues (site_id, device_id, catalogue, version, updated_by, updated_at) "
        "VALUES (%s, %s, %s::jsonb, %s, %s, %s) ON CONFLICT (site_id, device_id) DO UPDATE SET "
        "catalogue = EXCLUDED.catalogue, version = EXCLUDED.version, updated_by = EXCLUDED.updated_by, "
        "updated_at = EXCLUDED.updated_at",
        (site_id, device_id, json.dumps(catalogue, ensure_ascii=False), version, staff.username, now))
    queue_command(conn, "catalogue.sync", catalogue, site_id=site_id, device_id=device_id,
                  transaction_id=f"catalogue-{site_id}-{device_id}-{version}", now=now)
    return version


def publish_notice(conn: psycopg.Connection, staff: Staff, title: str, body: str,
                   now: datetime) -> tuple[int, list[str]]:
    """Add a notice to every station this staff member sees that has a catalogue here.
    Returns (stations updated, stations skipped for having no catalogue on the platform)."""
    title, body = title.strip(), body.strip()
    if not title or not body or len(title) > MAX_NOTICE_TITLE or len(body) > MAX_NOTICE_BODY:
        raise Refused("a notice has a title (up to %(title)d characters) and a text (up to %(body)d)",
                      title=MAX_NOTICE_TITLE, body=MAX_NOTICE_BODY)
    notice = {"id": f"notice-{uuid.uuid4().hex[:12]}", "kind": "notice",
              "title": {"zh": title, "en": title}, "body": {"zh": body, "en": body},
              "published_at": iso(now), "office": {"zh": staff.unit_name, "en": staff.unit_name}}
    with conn.transaction():
        rows = conn.execute(
            "SELECT dv.site_id, dv.device_id, c.catalogue FROM devices dv LEFT JOIN station_catalogues c "
            "ON c.site_id = dv.site_id AND c.device_id = dv.device_id "
            f"WHERE {visible_stations_sql()} ORDER BY dv.site_id, dv.device_id FOR UPDATE OF dv",
            {"unit": staff.org_unit_id}).fetchall()
        skipped = [f"{site}/{device}" for site, device, catalogue in rows if catalogue is None]
        updated = 0
        for site, device, catalogue in rows:
            if catalogue is not None:
                catalogue = {**catalogue, "notices": [notice, *catalogue.get("notices", [])]}
                store_and_queue(conn, staff, site, device, catalogue, now)
                updated += 1
    return updated, skipped
