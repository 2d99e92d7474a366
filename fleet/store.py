"""Writing a batch of station messages into PostgreSQL in one transaction.

Idempotent: a repeat of (site, device, seq) or of a message_id is dropped by the unique
keys of `event_keys` (ON CONFLICT DO NOTHING), so a redelivered batch stores nothing twice.
Then, per device touched: the contiguous watermark advances, and the missing seq ranges
above it are recorded as gaps (opened, or closed once filled).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
import structlog

from fleet.messages import Event, Rejected, Snapshot
from fleet.notify import SEALED_EVENT_TYPES, Notification, Notifier
from fleet.sealing import SealError, open_secret

log = structlog.get_logger("fleet.store")

_INSERT_KEYS = """
INSERT INTO event_keys (site_id, device_id, seq, message_id, received_at)
SELECT s, d, q, m, %(at)s FROM unnest(%(sites)s::text[], %(devices)s::text[], %(seqs)s::bigint[],
                                      %(ids)s::uuid[]) AS t(s, d, q, m)
ORDER BY s, d, q
ON CONFLICT DO NOTHING
RETURNING message_id::text
"""
_INSERT_EVENTS = """
INSERT INTO events (site_id, device_id, seq, message_id, type, ts, data, received_at)
SELECT s, d, q, m, ty, t, da, %(at)s
FROM unnest(%(sites)s::text[], %(devices)s::text[], %(seqs)s::bigint[], %(ids)s::uuid[],
            %(types)s::text[], %(tss)s::timestamptz[], %(datas)s::jsonb[]) AS x(s, d, q, m, ty, t, da)
"""
_NEW_DEVICES = """
INSERT INTO devices (site_id, device_id)
SELECT DISTINCT s, d FROM unnest(%(sites)s::text[], %(devices)s::text[]) AS x(s, d) ORDER BY s, d
ON CONFLICT (site_id, device_id) DO NOTHING
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
_UPSERT_DEVICES = """
INSERT INTO devices AS dv (site_id, device_id, max_seq, last_event_ts, last_received_at)
SELECT s, d, q, t, a FROM unnest(%(sites)s::text[], %(devices)s::text[], %(seqs)s::bigint[],
                                 %(tss)s::timestamptz[], %(ats)s::timestamptz[]) AS x(s, d, q, t, a)
ORDER BY s, d
ON CONFLICT (site_id, device_id) DO UPDATE SET
    max_seq = GREATEST(dv.max_seq, EXCLUDED.max_seq),
    last_event_ts = GREATEST(dv.last_event_ts, EXCLUDED.last_event_ts),
    last_received_at = GREATEST(dv.last_received_at, EXCLUDED.last_received_at)
"""
# The run of stored seqs that starts just above the watermark ends at the first stored seq
# without a successor: that is the new watermark.
_ADVANCE_WATERMARKS = """
UPDATE devices dv SET watermark = (
    SELECT min(k.seq) FROM event_keys k
    WHERE k.site_id = dv.site_id AND k.device_id = dv.device_id AND k.seq > dv.watermark
      AND NOT EXISTS (SELECT 1 FROM event_keys n WHERE n.site_id = k.site_id
                      AND n.device_id = k.device_id AND n.seq = k.seq + 1))
FROM unnest(%(sites)s::text[], %(devices)s::text[]) AS t(s, d)
WHERE dv.site_id = t.s AND dv.device_id = t.d
  AND EXISTS (SELECT 1 FROM event_keys k WHERE k.site_id = dv.site_id
              AND k.device_id = dv.device_id AND k.seq = dv.watermark + 1)
RETURNING dv.site_id, dv.device_id
"""
_HOLED_DEVICES = """
SELECT dv.site_id, dv.device_id, dv.watermark FROM devices dv
JOIN unnest(%(sites)s::text[], %(devices)s::text[]) AS t(s, d) ON dv.site_id = t.s AND dv.device_id = t.d
WHERE dv.max_seq > dv.watermark
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
            for snapshot in snapshots:
                self._write_snapshot(conn, snapshot)
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
                         "ON dv.site_id = t.s AND dv.device_id = t.d ORDER BY dv.site_id, dv.device_id "
                         "FOR UPDATE OF dv", keys)
            conn.execute(_RAISE_MAX_SEQ, {**keys, "seqs": [r[2] for r in rows]})
            _watermarks_and_gaps(conn, keys, keys["at"], result)
        return result

    # -- events --------------------------------------------------------------------------
    def _write_events(self, conn: psycopg.Connection, events: list[Event], at: datetime,
                      result: BatchResult) -> None:
        columns = _columns(events)
        inserted = {row[0] for row in conn.execute(_INSERT_KEYS, {**columns, "at": at}).fetchall()}
        fresh: list[Event] = []
        for event in events:  # first occurrence of each inserted message_id only
            if event.message_id in inserted:
                inserted.discard(event.message_id)
                fresh.append(event)
        result.stored = len(fresh)
        result.duplicates = len(events) - len(fresh)
        result.stored_ids = [e.message_id for e in fresh]
        if not fresh:
            return
        conn.execute(_INSERT_EVENTS, {**_columns(fresh), "at": at})
        # A row for a new device now (DO NOTHING locks no existing row), so that recovery
        # (`settle_stale`) finds it even if the worker dies before settling.
        conn.execute(_NEW_DEVICES, _columns(fresh))
        for event in fresh:
            merge_touched(result.touched, {(event.site_id, event.device_id): Touched(event.seq, event.ts, at)})
        for event in fresh:
            if event.type in SEALED_EVENT_TYPES and "secret" in event.data:
                result.notified += self._open_and_notify(event)
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


def _watermarks_and_gaps(conn: psycopg.Connection, keys: dict, at: datetime, result: BatchResult) -> None:
    conn.execute(_ADVANCE_WATERMARKS, keys)
    result.gaps_closed += conn.execute(_CLOSE_GAPS_BELOW, keys).rowcount
    for site_id, device_id, watermark in conn.execute(_HOLED_DEVICES, keys).fetchall():
        opened, closed = _reconcile_gaps(conn, site_id, device_id, watermark, at)
        result.gaps_opened += opened
        result.gaps_closed += closed


def _columns(events: list[Event]) -> dict[str, list]:
    return {
        "sites": [e.site_id for e in events], "devices": [e.device_id for e in events],
        "seqs": [e.seq for e in events], "ids": [e.message_id for e in events],
        "types": [e.type for e in events], "tss": [e.ts for e in events],
        "datas": [e.body for e in events],
    }


def missing_ranges(watermark: int, stored: list[int]) -> list[tuple[int, int]]:
    """Seq ranges absent above `watermark` and below the highest stored seq (sorted input)."""
    ranges, expected = [], watermark + 1
    for seq in stored:
        if seq > expected:
            ranges.append((expected, seq - 1))
        expected = max(expected, seq + 1)
    return ranges


def _reconcile_gaps(conn: psycopg.Connection, site_id: str, device_id: str, watermark: int,
                    at: datetime) -> tuple[int, int]:
    """Open a gap for each missing range no open gap covers; close open gaps now filled."""
    stored = [r[0] for r in conn.execute(
        "SELECT seq FROM event_keys WHERE site_id = %s AND device_id = %s AND seq > %s ORDER BY seq",
        (site_id, device_id, watermark))]
    missing = missing_ranges(watermark, stored)
    open_gaps = conn.execute(
        "SELECT id, from_seq, to_seq FROM gaps WHERE site_id = %s AND device_id = %s AND closed_at IS NULL",
        (site_id, device_id)).fetchall()
    overlaps = lambda a, b: a[0] <= b[1] and b[0] <= a[1]  # noqa: E731
    filled = [gap_id for gap_id, lo, hi in open_gaps if not any(overlaps((lo, hi), m) for m in missing)]
    if filled:
        conn.execute("UPDATE gaps SET closed_at = %s WHERE id = ANY(%s)", (at, filled))
    new = [m for m in missing if not any(overlaps((lo, hi), m) for _, lo, hi in open_gaps)]
    if new:
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO gaps (site_id, device_id, from_seq, to_seq, detected_at) VALUES (%s, %s, %s, %s, %s)",
                [(site_id, device_id, lo, hi, at) for lo, hi in new])
    return len(new), len(filled)
