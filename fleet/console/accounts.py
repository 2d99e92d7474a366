"""Org units (district > street > community), staff accounts and what each one may see.

A station belongs to a community; a staff member sees the stations of their own unit and of
every unit below it. Passwords are hashed with Argon2id (argon2-cffi); repeated failures
lock the account for a while.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

LEVELS = ("district", "street", "community")
PARENT_LEVEL = {"street": "district", "community": "street"}
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)

_hasher = PasswordHasher()

class AccountError(ValueError):
    pass


@dataclass(frozen=True)
class Staff:
    id: int
    username: str
    display_name: str
    org_unit_id: int
    level: str
    unit_name: str


def add_unit(conn: psycopg.Connection, name: str, level: str, parent_id: int | None = None) -> int:
    if level not in LEVELS:
        raise AccountError(f"level must be one of {', '.join(LEVELS)}")
    if level == "district":
        if parent_id is not None:
            raise AccountError("a district has no parent")
    else:
        parent = conn.execute("SELECT level FROM org_units WHERE id = %s", (parent_id,)).fetchone()
        if parent is None or parent[0] != PARENT_LEVEL[level]:
            raise AccountError(f"a {level} belongs to a {PARENT_LEVEL[level]}")
    return conn.execute("INSERT INTO org_units (name, level, parent_id) VALUES (%s, %s, %s) RETURNING id",
                        (name, level, parent_id)).fetchone()[0]


def assign_station(conn: psycopg.Connection, site_id: str, device_id: str, community_id: int) -> None:
    level = conn.execute("SELECT level FROM org_units WHERE id = %s", (community_id,)).fetchone()
    if level is None or level[0] != "community":
        raise AccountError("a station belongs to a community")
    conn.execute("INSERT INTO devices (site_id, device_id, community_id) VALUES (%s, %s, %s) "
                 "ON CONFLICT (site_id, device_id) DO UPDATE SET community_id = EXCLUDED.community_id",
                 (site_id, device_id, community_id))


def add_staff(conn: psycopg.Connection, username: str, display_name: str, password: str, org_unit_id: int) -> int:
    if len(password) < 10:
        raise AccountError("a password has at least 10 characters")
    return conn.execute(
        "INSERT INTO staff (username, display_name, password_hash, org_unit_id) VALUES (%s, %s, %s, %s) RETURNING id",
        (username, display_name, _hasher.hash(password), org_unit_id)).fetchone()[0]


def _staff_row(conn: psycopg.Connection, where: str, value: object) -> tuple | None:
    return conn.execute(
        "SELECT s.id, s.username, s.display_name, s.org_unit_id, o.level, o.name, s.password_hash, "
        f"s.failed_logins, s.locked_until FROM staff s JOIN org_units o ON o.id = s.org_unit_id WHERE {where}",
        (value,)).fetchone()


def staff_by_id(conn: psycopg.Connection, staff_id: int) -> Staff | None:
    row = _staff_row(conn, "s.id = %s", staff_id)
    return Staff(*row[:6]) if row else None


def authenticate(conn: psycopg.Connection, username: str, password: str, now: datetime) -> Staff | None:
    """The staff member, or None (wrong name or password, or locked after repeated failures)."""
    row = _staff_row(conn, "s.username = %s", username)
    if row is None:
        _hasher.hash(password)  # the same work as a real check: no timing hint of who exists
        return None
    staff_id, password_hash, failed, locked_until = row[0], row[6], row[7], row[8]
    if locked_until is not None and locked_until > now:
        return None
    try:
        _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        failed += 1
        lock = now + LOCKOUT if failed >= MAX_FAILED_LOGINS else None
        conn.execute("UPDATE staff SET failed_logins = %s, locked_until = %s WHERE id = %s",
                     (0 if lock else failed, lock, staff_id))
        return None
    updates = ["failed_logins = 0", "locked_until = NULL"]
    params: list[object] = []
    if _hasher.check_needs_rehash(password_hash):
        updates.append("password_hash = %s")
        params.append(_hasher.hash(password))
    conn.execute(f"UPDATE staff SET {', '.join(updates)} WHERE id = %s", (*params, staff_id))
    return Staff(*row[:6])


def visible_stations_sql(alias: str = "dv") -> str:
    """A condition on devices `alias`: in the staff member's unit or below (%(unit)s)."""
    return (f"{alias}.community_id IN (WITH RECURSIVE subtree(id) AS ("
            "SELECT id FROM org_units WHERE id = %(unit)s "
            "UNION ALL SELECT o.id FROM org_units o JOIN subtree s ON o.parent_id = s.id) "
            "SELECT id FROM subtree)")


def can_see_station(conn: psycopg.Connection, staff: Staff, site_id: str, device_id: str) -> bool:
    return conn.execute(f"SELECT EXISTS (SELECT 1 FROM devices dv WHERE dv.site_id = %(site)s "
                        f"AND dv.device_id = %(device)s AND {visible_stations_sql()})",
                        {"unit": staff.org_unit_id, "site": site_id, "device": device_id}).fetchone()[0]
