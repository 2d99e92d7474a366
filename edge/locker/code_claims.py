"""A right pickup code's claim: the durable record a door opening by code needs before its
unlock frame goes out, written in one short transaction (ADR 0137).

One `claim()` reads, under the write lock, everything the opening depends on (the kiosk's
cooldown, the stored parcel with that code, its compartment's fault flag, the outbox's room)
with one statement, and writes the accepted attempt, its audit row and the door operation
in state `opening`, straight through sqlite3 on the database's claim connection. Its commit
survives the process being killed; the caller syncs it to disk while the frame goes out.

Anything but a plain right code (malformed, wrong or used code, cooldown, a faulty
compartment, an outbox near its budget) is not claimed here: the caller takes the general
path, which records and refuses it exactly as before (and with a FULL commit).

A door operation left in `opening` (killed between the claim and the record of the unlock)
is settled at the next start, or by the next status read of its board (`settle`).
"""
from __future__ import annotations

from dataclasses import dataclass

from edge.clock import Clock
from edge.locker.codes import PickupCodes, normalise_code
from edge.locker.doors import ROOM_BYTES, ROOM_ROWS, new_id
from edge.storage import Actor, Database
from edge.storage.audit import audit_now
from edge.storage.outbox import db_time

OPENING = "opening"  # the door operation's state between its claim and the unlock's result
NOT_OPENED = "not_opened"  # a claim whose door did not open (unlock failed, or found shut at start)

# One statement for every check an opening by code depends on; `cooldown` is compared as
# text, which is how UtcDateTime stores times (fixed width, so text order is time order).
_READ_SQL = (
    "SELECT p.id, p.compartment, c.fault, "
    "(SELECT max(cooldown_until) FROM locker_code_attempt WHERE kiosk_id = ?), "
    "s.pending_rows, s.pending_bytes, s.max_rows, s.max_bytes "
    "FROM locker_parcel p JOIN locker_compartment c ON c.number = p.compartment "
    "LEFT JOIN outbox_stats s ON s.id = 1 "
    "WHERE p.code_hash = ? AND p.state = 'stored' LIMIT 1")
_ATTEMPT_SQL = "INSERT INTO locker_code_attempt (kiosk_id, ts, ok, cooldown_until) VALUES (?, ?, 1, NULL)"
_OPERATION_SQL = (
    "INSERT INTO locker_door_op (id, parcel_id, compartment, purpose, method, actor_id, state, "
    "opened_at, closed_at) VALUES (?, ?, ?, 'pickup', 'code', NULL, ?, ?, NULL)")


@dataclass(frozen=True)
class Claim:
    """A committed claim: the door operation (state `opening`) of this parcel's compartment."""

    pickup_id: str
    parcel_id: str
    compartment: int


class CodeClaims:
    """Owns the claim transaction of a pickup by code; holds no state between calls."""

    def __init__(self, db: Database, codes: PickupCodes, clock: Clock) -> None:
        self._db, self._codes, self._clock = db, codes, clock
        db.open_claims()  # pre-opened: the first resident does not pay for the connection

    def claim(self, raw_code: str, kiosk_id: str) -> Claim | None:
        """The committed claim, or None when this is not a plain right code (the general
        path decides then; nothing was written). Call with the locker's rules lock held."""
        code = normalise_code(raw_code)
        if code is None:
            return None
        digest = self._codes.digest(code)
        with self._db.claim() as transaction:
            row = transaction.execute(_READ_SQL, (kiosk_id, digest)).fetchone()
            now = self._clock.now()
            at = db_time(now)
            if row is None:
                return None
            parcel_id, compartment, fault, cooldown_until, rows, size, max_rows, max_bytes = row
            if fault is not None or (cooldown_until is not None and cooldown_until > at):
                return None
            if rows is not None and (rows + ROOM_ROWS > max_rows or size + ROOM_BYTES > max_bytes):
                return None  # near the outbox's budget: the general path's probe decides (ADR 0026)
            pickup_id = new_id("pk")
            transaction.execute(_ATTEMPT_SQL, (kiosk_id, at))
            audit_now(transaction, Actor.RESIDENT, "pickup_code", "accepted", target=parcel_id,
                      detail={"kiosk": kiosk_id, "pickup_id": pickup_id}, clock=self._clock)
            transaction.execute(_OPERATION_SQL, (pickup_id, parcel_id, compartment, OPENING, at))
        return Claim(pickup_id, parcel_id, compartment)
