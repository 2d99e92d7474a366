"""Writing events for the cloud, within a declared storage budget. The cloud bridge drains
what is written here.

Call `record_event` inside the same `db.write()` session as the state change it reports:
both commit together or neither does.

The budget (ADR 0031): pending (unpublished) rows and bytes are kept as running totals in
`outbox_stats` by SQLite triggers (migration 0005), so an insert checks one row instead of
counting the table. Over budget, Priority.TELEMETRY rows are dropped oldest-first (counted
in kv, logged, and announced to the cloud in an `outbox.dropped` event so that the seq gap
they leave is explained, ADR 0032); every other event is refused with StorageFull.
"""
from __future__ import annotations

import enum
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from sqlalchemy import Integer, delete, event, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from edge.clock import Clock, SystemClock
from edge.logs import get_logger
from edge.storage.db import Database, StorageFull
from edge.storage.models import Base, KeyValue, OutboxEvent
from edge.ops.metrics import count_event_after_commit

log = get_logger("edge.outbox")

DROPPED_EVENT = "outbox.dropped"
DROPPED_COUNTER_KEY = "outbox.telemetry_dropped"


class Priority(enum.IntEnum):
    """Lower goes first. Emergencies and command replies overtake any backlog."""

    EMERGENCY = 0
    REPLY = 1
    NORMAL = 5
    BULK = 8  # large, patient payloads (voice-note chunks, ADR 0128): after everything but telemetry
    TELEMETRY = 9  # low value: the only class the bridge may drop when space runs out


class OutboxStats(Base):
    """One row: running totals of unpublished events (kept by triggers) and the budget."""

    __tablename__ = "outbox_stats"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pending_rows: Mapped[int] = mapped_column(Integer, default=0)
    pending_bytes: Mapped[int] = mapped_column(Integer, default=0)
    max_rows: Mapped[int] = mapped_column(Integer)
    max_bytes: Mapped[int] = mapped_column(Integer)


_system_clock = SystemClock()
_INSERT_SQL = ("INSERT INTO outbox (message_id, type, ts, priority, data, size_bytes) "
               "VALUES (?, ?, ?, ?, ?, ?)")
_HEADROOM_KEY = "outbox_headroom"
_STATS_SQL = "SELECT pending_rows, pending_bytes, max_rows, max_bytes FROM outbox_stats WHERE id = 1"
_commit_listeners: list[Callable[[], None]] = []
_listeners_lock = threading.Lock()


def on_event_committed(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` after each commit that wrote events (the bridge wakes up instead of
    polling). Returns a function that removes the listener."""
    with _listeners_lock:
        _commit_listeners.append(callback)

    def remove() -> None:
        with _listeners_lock:
            if callback in _commit_listeners:
                _commit_listeners.remove(callback)

    return remove


def record_event(
    session: Session,
    type: str,
    data: dict[str, Any],
    *,
    priority: Priority = Priority.NORMAL,
    clock: Clock = _system_clock,
    message_id: str | None = None,
) -> OutboxEvent:
    """Add an event to the outbox in the caller's transaction.

    Returns the row as written (its `seq` assigned; the object is not attached to the
    session). Raises StorageFull when the budget is spent and no telemetry is left to drop
    (the caller refuses its new work). A telemetry event that does not fit is itself dropped
    and counted: its `seq` is then None. `message_id` is new unless given (a caller that
    seals a secret to the message id draws it first).
    """
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    event_row = OutboxEvent(
        message_id=message_id or str(uuid.uuid4()),
        type=type,
        ts=clock.now(),
        priority=int(priority),
        data=data,
        size_bytes=len(body.encode()),
    )
    headroom = _headroom(session)
    if not _make_room(session, event_row, clock, headroom):
        return event_row
    # Straight to sqlite3, not through the ORM or even a Core insert: the outbox is the hot
    # path (ADR 0037). Same transaction as the caller's, so the seq has no gap; the JSON is
    # stored as encoded above, so it is encoded once and size_bytes is its exact size.
    cursor = headroom.driver.execute(_INSERT_SQL, (event_row.message_id, type, db_time(event_row.ts),
                                                    event_row.priority, body, event_row.size_bytes))
    event_row.seq = cursor.lastrowid
    _notify_after_commit(session)
    count_event_after_commit(session, type, data)  # metrics, once committed (ADR 0152)
    return event_row


def db_time(at: datetime) -> str:
    """How UtcDateTime stores `at` (SQLAlchemy's SQLite DATETIME text), for raw statements."""
    if at.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return at.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")


def _driver(session: Session) -> sqlite3.Connection:
    """The sqlite3 connection under the session's transaction (begun if it was not)."""
    return session.connection().connection.driver_connection  # type: ignore[return-value]


def _make_room(session: Session, new: OutboxEvent, clock: Clock, headroom: _Headroom) -> bool:
    """True when `new` fits (after dropping telemetry if needed); False when `new` is
    telemetry that was dropped itself."""
    if headroom.take(new.size_bytes):
        return True
    session.info.pop(_HEADROOM_KEY, None)  # read afresh; dropping telemetry changes the totals
    stats = _stats(session)
    excess_rows = stats.pending_rows + 1 - stats.max_rows
    excess_bytes = stats.pending_bytes + new.size_bytes - stats.max_bytes
    if excess_rows <= 0 and excess_bytes <= 0:
        return True
    # Free a little more than needed, so a full outbox does not drop one row per insert.
    freed_rows, freed_bytes = drop_telemetry(
        session,
        rows=max(excess_rows, 0) + stats.max_rows // 100 + 1,
        size=max(excess_bytes, 0) + stats.max_bytes // 100,
        reason="budget",
        clock=clock,
    )
    if freed_rows >= excess_rows and freed_bytes >= excess_bytes:
        return True
    if new.priority == Priority.TELEMETRY:
        _count_drops(session, 1)
        log.warning("outbox_telemetry_dropped", count=1, type=new.type, reason="budget_new")
        return False
    raise StorageFull(
        f"the outbox is full ({stats.pending_rows} events, {stats.pending_bytes} bytes waiting "
        "for the cloud); new work is refused until the connection drains it"
    )


class _Headroom:
    """Room left in the budget as read once per transaction, less what record_event has
    taken since (ADR 0037). The transaction holds the write lock, and nothing else in it adds
    pending rows, so the real room is never smaller: a fit here is a real fit. Also keeps
    the transaction's sqlite3 connection, which the session is slow to hand out per row."""

    def __init__(self, transaction: object, driver: sqlite3.Connection, totals: _Totals) -> None:
        self.transaction = transaction
        self.driver = driver
        self.rows = totals.max_rows - totals.pending_rows
        self.bytes = totals.max_bytes - totals.pending_bytes

    def take(self, size: int) -> bool:
        if self.rows < 1 or self.bytes < size:
            return False
        self.rows -= 1
        self.bytes -= size
        return True


def _headroom(session: Session) -> _Headroom:
    headroom = session.info.get(_HEADROOM_KEY)
    transaction = session.get_transaction()
    if headroom is None or transaction is None or headroom.transaction is not transaction:
        driver = _driver(session)  # begins the transaction if need be
        headroom = _Headroom(session.get_transaction(), driver, _stats(session))
        session.info[_HEADROOM_KEY] = headroom
    return headroom


def drop_telemetry(
    session: Session,
    *,
    rows: int | None = None,
    size: int | None = None,
    older_than: datetime | None = None,
    reason: str,
    clock: Clock = _system_clock,
) -> tuple[int, int]:
    """Delete unpublished telemetry oldest-first until `rows` rows and `size` bytes are freed
    (or everything older than `older_than`); announce the dropped seqs. Returns (rows, bytes)."""
    query = (
        select(OutboxEvent.seq, OutboxEvent.size_bytes)
        .where(OutboxEvent.published_at.is_(None), OutboxEvent.priority == int(Priority.TELEMETRY))
        .order_by(OutboxEvent.seq)
    )
    if older_than is not None:
        query = query.where(OutboxEvent.ts < older_than)
    victims: list[int] = []
    freed_bytes = 0
    for seq, size_bytes in session.execute(query.execution_options(yield_per=1000)):
        if older_than is None and len(victims) >= (rows or 0) and freed_bytes >= (size or 0):
            break
        victims.append(seq)
        freed_bytes += size_bytes
    if not victims:
        return 0, 0
    for chunk in range(0, len(victims), 500):
        session.execute(delete(OutboxEvent).where(OutboxEvent.seq.in_(victims[chunk:chunk + 500])))
    _count_drops(session, len(victims))
    ranges = seq_ranges(victims)
    announce = OutboxEvent(
        message_id=str(uuid.uuid4()), type=DROPPED_EVENT, ts=clock.now(), priority=int(Priority.NORMAL),
        data={"count": len(victims), "ranges": ranges, "reason": reason},
    )
    announce.size_bytes = len(json.dumps(announce.data, separators=(",", ":")))
    session.add(announce)
    session.flush()
    log.warning("outbox_telemetry_dropped", count=len(victims), first_seq=victims[0],
                last_seq=victims[-1], reason=reason)
    _notify_after_commit(session)
    return len(victims), freed_bytes


def seq_ranges(seqs: list[int]) -> list[list[int]]:
    """[1, 2, 3, 7, 9, 10] -> [[1, 3], [7, 7], [9, 10]] (input sorted ascending)."""
    ranges: list[list[int]] = []
    for seq in seqs:
        if ranges and ranges[-1][1] == seq - 1:
            ranges[-1][1] = seq
        else:
            ranges.append([seq, seq])
    return ranges


def _count_drops(session: Session, count: int) -> None:
    counter = session.get(KeyValue, DROPPED_COUNTER_KEY)
    if counter is None:
        session.add(KeyValue(key=DROPPED_COUNTER_KEY, value=str(count)))
    else:
        counter.value = str(int(counter.value) + count)


def dropped_count(session: Session) -> int:
    counter = session.get(KeyValue, DROPPED_COUNTER_KEY)
    return int(counter.value) if counter else 0


def set_budget(session: Session, *, max_rows: int, max_bytes: int) -> None:
    session.execute(update(OutboxStats).where(OutboxStats.id == 1)
                    .values(max_rows=max_rows, max_bytes=max_bytes))


def pending(session: Session) -> tuple[int, int]:
    """(rows, bytes) waiting for the cloud, from the running totals."""
    stats = _stats(session)
    return stats.pending_rows, stats.pending_bytes


class _Totals(NamedTuple):
    pending_rows: int
    pending_bytes: int
    max_rows: int
    max_bytes: int


def _stats(session: Session) -> _Totals:
    """The totals as the triggers left them a moment ago (never a stale ORM copy)."""
    row = _driver(session).execute(_STATS_SQL).fetchone()
    if row is None:
        raise RuntimeError("outbox_stats row missing: run the migrations (0005)")
    return _Totals(*row)


# Rows of class `priority` up to `seq` are skipped inside SQLite (ADR 0037): the sender has
# sent them all in this session, so they are in flight, acknowledged or published. A reply
# carries the route (topic, correlation data) the bridge stored beside it.
_PENDING_SQL = (
    "SELECT o.seq, o.message_id, o.type, o.ts, o.data, r.topic, r.correlation_data, o.priority "
    "FROM outbox o LEFT JOIN bridge_reply_route r ON r.seq = o.seq "
    "WHERE o.published_at IS NULL AND NOT (o.priority = ? AND o.seq <= ?) "
    "ORDER BY o.priority, o.seq LIMIT ?"
)
NOTHING_SENT = (-1, 0)  # (priority, seq) before anything was sent


@contextmanager
def pending_rows(db: Database, sent_up_to: tuple[int, int], limit: int) -> Iterator[sqlite3.Cursor]:
    """Unpublished rows in sending order (priority, then seq), skipping those of class
    sent_up_to[0] up to seq sent_up_to[1]. Each row: seq, message_id, type, ts (stored
    text), data (JSON text), reply topic, correlation data, priority. A raw sqlite3 cursor,
    stepped only as far as the caller reads: no SQLAlchemy row processing on the hot path."""
    connection = db.reader.raw_connection()
    try:
        cursor = connection.driver_connection.execute(  # type: ignore[union-attr]
            _PENDING_SQL, (*sent_up_to, limit))
        try:
            yield cursor
        finally:
            cursor.close()
    finally:
        connection.close()


def mark_published(session: Session, seqs: list[int], at: datetime) -> None:
    driver, stamp = _driver(session), db_time(at)
    for first in range(0, len(seqs), 500):
        chunk = seqs[first:first + 500]
        driver.execute("UPDATE outbox SET published_at = ? WHERE published_at IS NULL AND seq IN "
                       f"({','.join('?' * len(chunk))})", (stamp, *chunk))


def prune(session: Session, *, keep_published: int, telemetry_max_age: timedelta,
          clock: Clock = _system_clock, published_before: datetime | None = None) -> int:
    """Delete published rows beyond the diagnostic tail (and, with `published_before`, only
    those published before it: kept for replay), and telemetry that is too old to be worth
    sending. Returns the number of published rows deleted."""
    drop_telemetry(session, older_than=clock.now() - telemetry_max_age, reason="age", clock=clock)
    cutoff = session.scalar(
        select(OutboxEvent.seq).where(OutboxEvent.published_at.is_not(None))
        .order_by(OutboxEvent.seq.desc()).offset(keep_published).limit(1)
    )
    if cutoff is None:
        return 0
    old_enough = [OutboxEvent.published_at < published_before] if published_before is not None else []
    result = session.execute(delete(OutboxEvent).where(OutboxEvent.published_at.is_not(None),
                                                       OutboxEvent.seq <= cutoff, *old_enough))
    return result.rowcount or 0


def _notify_after_commit(session: Session) -> None:
    if session.info.get("outbox_notify"):
        return
    session.info["outbox_notify"] = True

    def _notify(_session: Session) -> None:
        _session.info.pop("outbox_notify", None)
        with _listeners_lock:
            listeners = list(_commit_listeners)
        for listener in listeners:
            listener()

    event.listen(session, "after_commit", _notify, once=True)
