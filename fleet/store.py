"""Writing a batch of station messages into PostgreSQL in one transaction.

Idempotent: a repeat of (site, device, seq) or of a message_id is dropped by the unique
keys of `event_keys` (ON CONFLICT DO NOTHING), so a redelivered batch stores nothing twice.
Then, per device touched: the contiguous watermark advances, and the missing seq ranges
above it are recorded as gaps (opened, or closed once filled).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
import structlog

from fleet.messages import Event, Rejected, Snapshot
from fleet.notify import SEALED_EVENT_TYPES, Notification, Notifier
from fleet.sealing import SealError, open_secret

log = structlog.get_logger("fleet.store")

# One statement per batch (ADR 0165): the batch travels as one JSON array that PostgreSQL
# unpacks itself (jsonb_to_recordset), instead of one array parameter per column, which
# psycopg builds element by element in Python (half of a worker's time went there). The
# keys are inserted first; only the rows whose exact key came back (new) go on to events
# and, for a device this worker has not seen stored yet, to devices. A repeat inside the
# batch meets the key its first copy inserted in the same statement, so it is dropped like
# a repeat from an earlier batch. Returns the batch positions of the stored rows.
_WRITE_EVENTS = """
WITH batch AS (
    SELECT * FROM jsonb_to_recordset(%(batch)s::jsonb)
        AS b(i int, s text, d text, q bigint, m uuid, ty text, t timestamptz, da jsonb, n boolean)
), keys AS (
    INSERT INTO event_keys (site_id, device_id, seq, message_id, received_at)
    SELECT s, d, q, m, %(at)s FROM batch ORDER BY s, d, q, i
    ON CONFLICT DO NOTHING
    RETURNING site_id, device_id, seq, message_id
), fresh AS (
    SELECT DISTINCT ON (b.m) b.* FROM batch b
    JOIN keys k ON k.message_id = b.m AND k.site_id = b.s AND k.device_id = b.d AND k.seq = b.q
    ORDER BY b.m, b.i
), stored AS (
    INSERT INTO events (site_id, device_id, seq, message_id, type, ts, data, received_at)
    SELECT s, d, q, m, ty, t, da, %(at)s FROM fresh
), new_devices AS (
    -- A row for a new device now, so that recovery (`settle_stale`) finds it even if the
    -- worker dies before settling. Only for devices not known to have a row (n): DO NOTHING
    -- locks no existing row, but it waits for a transaction that updated it (a settler).
    INSERT INTO devices (site_id, device_id)
    SELECT s, d FROM fresh WHERE n GROUP BY s, d ORDER BY s COLLATE "C", d COLLATE "C"
    ON CONFLICT (site_id, device_id) DO NOTHING
)
SELECT i FROM fresh ORDER BY i
"""
# Devices whose bookkeeping is behind their stored keys: a worker died between commit and
# settle, or a hole is still open.
_STALE_DEVICES = """
SELECT dv.site_id, dv.device_id, top.seq FROM devices dv
CROSS JOIN LATERAL (SELECT k.seq FROM event_keys k WHERE k.site_id = dv.site_id AND k.device_id = dv.device_id
                    ORDER BY k.seq DESC LIMIT 1) AS top
WHERE top.seq > dv.max_seq OR dv.max_seq > dv.watermark
ORDER BY dv.site_id, dv.device_id LIMIT %(limit)s
"""
_RAISE_MAX_SEQ = """
UPDATE devices dv SET max_seq = GREATEST(dv.max_seq, t.q)
FROM unnest(%(sites)s::text[], %(devices)s::text[], %(seqs)s::bigint[]) AS t(s, d, q)
WHERE dv.site_id = t.s AND dv.device_id = t.d
"""
# Every statement that locks devices' rows takes them in one order, bytewise (COLLATE "C",
# as Python sorts str), so that no two transactions wait for each other in a circle.
_UPSERT_DEVICES = """
INSERT INTO devices AS dv (site_id, device_id, max_seq, last_event_ts, last_received_at)
SELECT s, d, q, t, a FROM unnest(%(sites)s::text[], %(devices)s::text[], %(seqs)s::bigint[],
                                 %(tss)s::timestamptz[], %(ats)s::timestamptz[]) AS x(s, d, q, t, a)
ORDER BY s COLLATE "C", d COLLATE "C"
ON CONFLICT (site_id, device_id) DO UPDATE SET
    max_seq = GREATEST(dv.max_seq, EXCLUDED.max_seq),
    last_event_ts = GREATEST(dv.last_event_ts, EXCLUDED.last_event_ts),
    last_received_at = GREATEST(dv.last_received_at, EXCLUDED.last_received_at)
"""
# The run of stored seqs that starts just above the watermark: its members are exactly the
# keys above the watermark whose seq equals watermark + their rank; its top is the new
# watermark. One pass over each device's keys above its watermark (index range scan).
_ADVANCE_WATERMARKS = """
UPDATE devices dv SET watermark = run.top
FROM (
    SELECT w.site_id, w.device_id, max(k.seq) AS top
    FROM devices w
    JOIN unnest(%(sites)s::text[], %(devices)s::text[]) AS t(s, d) ON w.site_id = t.s AND w.device_id = t.d
    CROSS JOIN LATERAL (
        SELECT e.seq, row_number() OVER (ORDER BY e.seq) AS rank FROM event_keys e
        WHERE e.site_id = w.site_id AND e.device_id = w.device_id AND e.seq > w.watermark
    ) AS k
    WHERE k.seq = w.watermark + k.rank
    GROUP BY w.site_id, w.device_id
) AS run
WHERE dv.site_id = run.site_id AND dv.device_id = run.device_id
"""
# For the devices with a hole above their watermark, in one statement: the missing seq
# ranges (between consecutive stored keys above the watermark; `missing_ranges` is the same
# rule in Python), then open gaps that overlap no missing range are closed and missing
# ranges that overlap no open gap are opened. Both read the statement's snapshot, so a gap
# closed here cannot hide a new range (a closed gap overlaps none).
_RECONCILE_GAPS = """
WITH holed AS (
    SELECT dv.site_id, dv.device_id, dv.watermark FROM devices dv
    JOIN unnest(%(sites)s::text[], %(devices)s::text[]) AS t(s, d) ON dv.site_id = t.s AND dv.device_id = t.d
    WHERE dv.max_seq > dv.watermark
), above AS (
    SELECT h.site_id, h.device_id, k.seq,
           coalesce(lag(k.seq) OVER (PARTITION BY h.site_id, h.device_id ORDER BY k.seq), h.watermark) AS prev
    FROM holed h JOIN event_keys k ON k.site_id = h.site_id AND k.device_id = h.device_id AND k.seq > h.watermark
), missing AS (
    SELECT site_id, device_id, prev + 1 AS lo, seq - 1 AS hi FROM above WHERE seq > prev + 1
), closed AS (
    UPDATE gaps g SET closed_at = %(at)s FROM holed h
    WHERE g.closed_at IS NULL AND g.site_id = h.site_id AND g.device_id = h.device_id
      AND NOT EXISTS (SELECT 1 FROM missing m WHERE m.site_id = g.site_id AND m.device_id = g.device_id
                      AND g.from_seq <= m.hi AND m.lo <= g.to_seq)
    RETURNING 1
), opened AS (
    INSERT INTO gaps (site_id, device_id, from_seq, to_seq, detected_at)
    SELECT m.site_id, m.device_id, m.lo, m.hi, %(at)s FROM missing m
    WHERE NOT EXISTS (SELECT 1 FROM gaps g WHERE g.closed_at IS NULL AND g.site_id = m.site_id
                      AND g.device_id = m.device_id AND g.from_seq <= m.hi AND m.lo <= g.to_seq)
    ORDER BY m.site_id, m.device_id, m.lo
    RETURNING 1
)
SELECT (SELECT count(*) FROM opened), (SELECT count(*) FROM closed)
"""
_CLOSE_GAPS_BELOW = """
UPDATE gaps g SET closed_at = %(at)s FROM devices dv
JOIN unnest(%(sites)s::text[], %(devices)s::text[]) AS t(s, d) ON dv.site_id = t.s AND dv.device_id = t.d
WHERE g.closed_at IS NULL AND g.site_id = dv.site_id AND g.device_id = dv.device_id
  AND g.to_seq <= dv.watermark
"""


@dataclass
class BatchResult:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    snapshots: int = 0
    gaps_opened: int = 0
    gaps_closed: int = 0
    notified: int = 0
    stored_ids: list[str] = field(default_factory=list)
    touched: dict[tuple[str, str], "Touched"] = field(default_factory=dict)  # devices to settle


@dataclass(frozen=True)
class Touched:
    """What a batch brought for one device: its highest seq, newest event time, arrival."""
    max_seq: int
    last_ts: datetime
    received_at: datetime

    def merge(self, other: "Touched") -> "Touched":
        return Touched(max(self.max_seq, other.max_seq), max(self.last_ts, other.last_ts),
                       max(self.received_at, other.received_at))


def merge_touched(into: dict[tuple[str, str], Touched], more: dict[tuple[str, str], Touched]) -> None:
    for key, value in more.items():
        into[key] = into[key].merge(value) if key in into else value


class IngestStore:
    def __init__(self, *, private_key: bytes | None, notifier: Notifier | None,
                 now: Callable[[], datetime]) -> None:
        self._private_key = private_key
        self._notifier = notifier
        self._now = now
        # Devices whose row is committed (they are never deleted): a batch of theirs need not
        # touch the devices table, where it would queue behind the settlers' transactions.
        self._known_devices: set[tuple[str, str]] = set()

    def write_batch(self, conn: psycopg.Connection, items: Iterable[Event | Snapshot | Rejected], *,
                    settle: bool = True) -> BatchResult:
        """Store one batch in one transaction (the caller acknowledges after this returns).

        The per-device bookkeeping (max seq, watermark, gaps) locks the devices' rows; with
        `settle=False` it is left to the caller (`settle(result.touched)`, later, in its own
        transaction), so that workers sharing devices do not queue behind each other's locks
        on the path to the acknowledgement (ADR 0160)."""
        events = [i for i in items if isinstance(i, Event)]
        snapshots = [i for i in items if isinstance(i, Snapshot)]
        rejected = [i for i in items if isinstance(i, Rejected)]
        result = BatchResult(rejected=len(rejected), snapshots=len(snapshots))
        at = self._now()
        with conn.transaction():
            if rejected:
                self._write_rejected(conn, rejected, at)
            if events:
                self._write_events(conn, events, at, result)
            for snapshot in _newest_in_lock_order(snapshots):
                self._write_snapshot(conn, snapshot)
        self._known_devices.update((e.site_id, e.device_id) for e in events)
        if settle and result.touched:
            self.settle(conn, result.touched, result)
        return result

    def settle(self, conn: psycopg.Connection, touched: dict[tuple[str, str], Touched],
               result: BatchResult | None = None) -> BatchResult:
        """Devices' max seq and arrival times, watermarks and gaps, in one transaction that
        locks the devices' rows in one order (no deadlock between workers)."""
        result = result if result is not None else BatchResult()
        devices = sorted(touched)
        at = self._now()
        keys = {"sites": [s for s, _ in devices], "devices": [d for _, d in devices], "at": at}
        with conn.transaction():
            conn.execute(_UPSERT_DEVICES, {**keys, "seqs": [touched[k].max_seq for k in devices],
                                           "tss": [touched[k].last_ts for k in devices],
                                           "ats": [touched[k].received_at for k in devices]})
            _watermarks_and_gaps(conn, keys, at, result)
        return result

    def settle_stale(self, conn: psycopg.Connection, limit: int = 1000) -> BatchResult:
        """Recovery: settle devices whose bookkeeping lags their stored keys (a worker died
        between commit and settle). Run at start and now and then by each worker."""
        result = BatchResult()
        with conn.transaction():
            rows = conn.execute(_STALE_DEVICES, {"limit": limit}).fetchall()
        if not rows:
            return result
        keys = {"sites": [r[0] for r in rows], "devices": [r[1] for r in rows], "at": self._now()}
        with conn.transaction():
            conn.execute("SELECT 1 FROM devices dv JOIN unnest(%(sites)s::text[], %(devices)s::text[]) AS t(s, d) "
                         "ON dv.site_id = t.s AND dv.device_id = t.d "
                         "ORDER BY dv.site_id COLLATE \"C\", dv.device_id COLLATE \"C\" FOR UPDATE OF dv", keys)
            conn.execute(_RAISE_MAX_SEQ, {**keys, "seqs": [r[2] for r in rows]})
            _watermarks_and_gaps(conn, keys, keys["at"], result)
        return result

    # -- events --------------------------------------------------------------------------
    def _write_events(self, conn: psycopg.Connection, events: list[Event], at: datetime,
                      result: BatchResult) -> None:
        batch = json.dumps([{"i": i, "s": e.site_id, "d": e.device_id, "q": e.seq, "m": e.message_id,
                             "ty": e.type, "t": e.ts.isoformat(), "da": e.data,
                             "n": (e.site_id, e.device_id) not in self._known_devices}
                            for i, e in enumerate(events)], ensure_ascii=False, separators=(",", ":"))
        fresh = [events[row[0]] for row in conn.execute(_WRITE_EVENTS, {"batch": batch, "at": at})]
        result.stored = len(fresh)
        result.duplicates = len(events) - len(fresh)
        result.stored_ids = [e.message_id for e in fresh]
        for event in fresh:
            merge_touched(result.touched, {(event.site_id, event.device_id): Touched(event.seq, event.ts, at)})
        for event in fresh:
            if event.type in SEALED_EVENT_TYPES and "secret" in event.data:
                result.notified += self._open_and_notify(event)
            if event.type in PROJECTED_EVENT_TYPES:
                project(conn, event)

    def _open_and_notify(self, event: Event) -> int:
        """Inside the batch's transaction: a crash before commit re-delivers the message and
        notifies again (at least once); a stored repeat is not notified twice."""
        if self._private_key is None or self._notifier is None:
            log.warning("sealed_secret_unopened", type=event.type, message_id=event.message_id,
                        reason="no platform private key or notifier configured")
            return 0
        try:
            secret = open_secret(self._private_key, event.message_id, str(event.data["secret"]))
        except SealError as exc:
            log.warning("sealed_secret_refused", type=event.type, message_id=event.message_id,
                        site_id=event.site_id, device_id=event.device_id, reason=str(exc))
            return 0
        data = {k: v for k, v in event.data.items() if k != "secret"}
        try:
            self._notifier.notify(Notification(event.type, event.site_id, event.device_id,
                                               event.message_id, data, secret))
        except Exception as exc:  # noqa: BLE001 - an SMS provider's outage must not stop ingest
            # The event is stored with its sealed secret, so the text can be sent again
            # from it; the log names the message, never the secret.
            log.error("notify_failed", type=event.type, message_id=event.message_id,
                      site_id=event.site_id, device_id=event.device_id, error=type(exc).__name__)
            return 0
        return 1

    # -- snapshots and rejects -------------------------------------------------------------
    def _write_snapshot(self, conn: psycopg.Connection, snapshot: Snapshot) -> None:
        """Newest wins by the station's own ts: workers may see two snapshots out of order."""
        payload = json.dumps(snapshot.payload, ensure_ascii=False)
        if snapshot.kind == "status":
            online = snapshot.payload.get("data", {}).get("online")
            conn.execute(
                "INSERT INTO devices AS dv (site_id, device_id, online, status, status_ts) "
                "VALUES (%s, %s, %s, %s::jsonb, %s) ON CONFLICT (site_id, device_id) DO UPDATE SET "
                "online = EXCLUDED.online, status = EXCLUDED.status, status_ts = EXCLUDED.status_ts "
                "WHERE dv.status_ts IS NULL OR dv.status_ts <= EXCLUDED.status_ts",
                (snapshot.site_id, snapshot.device_id, bool(online), payload, snapshot.ts))
        else:
            conn.execute(
                "INSERT INTO devices AS dv (site_id, device_id, compartments, compartments_ts) "
                "VALUES (%s, %s, %s::jsonb, %s) ON CONFLICT (site_id, device_id) DO UPDATE SET "
                "compartments = EXCLUDED.compartments, compartments_ts = EXCLUDED.compartments_ts "
                "WHERE dv.compartments_ts IS NULL OR dv.compartments_ts <= EXCLUDED.compartments_ts",
                (snapshot.site_id, snapshot.device_id, payload, snapshot.ts))

    @staticmethod
    def _write_rejected(conn: psycopg.Connection, rejected: list[Rejected], at: datetime) -> None:
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO rejected_messages (topic, payload, reason, received_at) VALUES (%s, %s, %s, %s)",
                [(r.topic, r.payload, r.reason, at) for r in rejected])
        for r in rejected:
            log.warning("message_rejected", topic=r.topic, reason=r.reason)


PROJECTED_EVENT_TYPES = frozenset({"booking.requested", "booking.cancelled", "request.submitted"})


def project(conn: psycopg.Connection, event: Event) -> None:
    """Keep the console's bookings and help requests up to date (same transaction)."""
    data = event.data
    if event.type == "booking.requested" and data.get("booking_id"):
        conn.execute(
            "INSERT INTO bookings (booking_id, site_id, device_id, data, requested_at) "
            "VALUES (%s, %s, %s, %s::jsonb, %s) ON CONFLICT (booking_id) DO NOTHING",
            (str(data["booking_id"]), event.site_id, event.device_id, event.body, event.ts))
    elif event.type == "booking.cancelled" and data.get("booking_id"):
        conn.execute("UPDATE bookings SET state = 'cancelled' WHERE booking_id = %s AND site_id = %s "
                     "AND device_id = %s", (str(data["booking_id"]), event.site_id, event.device_id))
    elif event.type == "request.submitted" and data.get("request_id") is not None:
        conn.execute(
            "INSERT INTO help_requests (site_id, device_id, request_id, data, submitted_at) "
            "VALUES (%s, %s, %s, %s::jsonb, %s) ON CONFLICT DO NOTHING",
            (event.site_id, event.device_id, str(data["request_id"]), event.body, event.ts))


def _newest_in_lock_order(snapshots: list[Snapshot]) -> list[Snapshot]:
    """The newest snapshot of each kind per device in the batch, in the order the devices'
    rows are locked everywhere (site, device); written in arrival order they deadlocked
    with the settlers."""
    newest: dict[tuple[str, str, str], Snapshot] = {}
    for snapshot in snapshots:
        key = (snapshot.site_id, snapshot.device_id, snapshot.kind)
        if key not in newest or newest[key].ts <= snapshot.ts:
            newest[key] = snapshot
    return [newest[key] for key in sorted(newest)]


def _watermarks_and_gaps(conn: psycopg.Connection, keys: dict, at: datetime, result: BatchResult) -> None:
    conn.execute(_ADVANCE_WATERMARKS, keys)
    result.gaps_closed += conn.execute(_CLOSE_GAPS_BELOW, keys).rowcount
    opened, closed = conn.execute(_RECONCILE_GAPS, keys).fetchone()
    result.gaps_opened += opened
    result.gaps_closed += closed


_BIGINT_MAX = 2 ** 63 - 1
_ESCAPED_NUL = re.compile(r"(?:^|[^\\])(?:\\\\)*\\u0000")  # \u0000 not itself escaped


def unstorable(event: Event) -> str | None:
    """Why PostgreSQL (or the encoding on the way) would refuse this event, or None. One such
    event fails its whole batch, again on every redelivery, and so stalls the worker: the
    caller keeps it as a rejected message (its raw payload) instead."""
    if event.seq > _BIGINT_MAX:
        return "seq beyond a 64-bit integer"
    if _ESCAPED_NUL.search(event.body):
        return "data holds a NUL character (\\u0000), which jsonb cannot store"
    try:
        event.body.encode("utf-8")
    except UnicodeEncodeError:
        return "data holds a lone UTF-16 surrogate, which is not UTF-8"
    return None


def missing_ranges(watermark: int, stored: list[int]) -> list[tuple[int, int]]:
    """Seq ranges absent above `watermark` and below the highest stored seq (sorted input):
    the rule `_RECONCILE_GAPS` applies in SQL, kept here to state and test it."""
    ranges, expected = [], watermark + 1
    for seq in stored:
        if seq > expected:
            ranges.append((expected, seq - 1))
        expected = max(expected, seq + 1)
    return ranges
