"""Operation records: the audit trail kept for the site's retention, purged in batches, and
exported for an inspector (`edge diag export`).

The audit table is append-only in the database itself (ADR 0135): triggers refuse every
UPDATE, and every DELETE except of rows older than the purge window, a one-row table the
purge fills and empties inside its own transaction. So no code path but `purge_expired`
can lose a record, and the purge leaves its own audit row in the same commit.
"""
from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from edge.clock import Clock, SystemClock, iso_utc
from edge.logs import get_logger
from edge.storage.audit import Actor, audit
from edge.storage.db import Database
from edge.storage.models import AuditEntry, AuditPurgeWindow

log = get_logger("edge.storage.records")
EXPORT_FIELDS = ("id", "ts", "actor", "actor_id", "action", "target", "result", "detail")
EXPORT_FORMATS = ("csv", "jsonl")


def purge_batch(db: Database, retention_days: int, batch_rows: int, clock: Clock) -> int:
    """Delete up to `batch_rows` of the oldest records older than the retention, and audit
    that, all in one transaction. Returns how many went."""
    before = clock.now() - timedelta(days=retention_days)
    with db.write() as s:
        ids = list(s.scalars(select(AuditEntry.id).where(AuditEntry.ts < before)
                             .order_by(AuditEntry.id).limit(batch_rows)))
        if not ids:
            return 0
        s.add(AuditPurgeWindow(id=1, before=before))
        s.flush()
        s.execute(delete(AuditEntry).where(AuditEntry.id.in_(ids)))
        s.execute(delete(AuditPurgeWindow))
        audit(s, Actor.SYSTEM, "records_purge", "ok", target="audit",
              detail={"deleted": len(ids), "before": iso_utc(before), "first_id": ids[0], "last_id": ids[-1],
                      "retention_days": retention_days}, clock=clock)
    return len(ids)


def purge_expired(db: Database, retention_days: int, batch_rows: int, clock: Clock,
                  stop: threading.Event | None = None) -> int:
    """Batches until nothing is older than the retention (each batch its own short write,
    so a deep backlog never holds the write lock long)."""
    total = 0
    while stop is None or not stop.is_set():
        deleted = purge_batch(db, retention_days, batch_rows, clock)
        total += deleted
        if deleted < batch_rows:
            break
    if total:
        log.info("records_purged", deleted=total, retention_days=retention_days)
    return total


def records(db: Database, since: datetime, until: datetime | None,
            page_rows: int = 1000) -> Iterator[dict[str, Any]]:
    """Every record with since <= ts < until (no end when None), oldest first, a page at a time."""
    last_id = 0
    while True:
        query = select(AuditEntry).where(AuditEntry.ts >= since, AuditEntry.id > last_id)
        if until is not None:
            query = query.where(AuditEntry.ts < until)
        with db.read() as s:
            page = list(s.scalars(query.order_by(AuditEntry.id).limit(page_rows)))
        for row in page:
            yield {"id": row.id, "ts": iso_utc(row.ts), "actor": row.actor, "actor_id": row.actor_id,
                   "action": row.action, "target": row.target, "result": row.result, "detail": row.detail}
        if len(page) < page_rows:
            return
        last_id = page[-1].id


def export_lines(rows: Iterable[dict[str, Any]], fmt: str) -> Iterator[str]:
    """Records as CSV (header first; detail as JSON text) or JSON Lines."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}")
    if fmt == "jsonl":
        for row in rows:
            yield json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "detail": json.dumps(row["detail"], ensure_ascii=False, sort_keys=True)})
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()


class RecordsJobs:
    """The scheduler's records job: purge what is past the retention, every `every_s`."""

    def __init__(self, db: Database, retention_days: int, batch_rows: int, every_s: float,
                 clock: Clock | None = None) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self._db, self._clock = db, clock or SystemClock()
        self._retention_days, self._batch_rows = retention_days, batch_rows
        self._stop = threading.Event()
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._scheduler.add_job(self.run_once, "interval", seconds=every_s, id="records-purge",
                                max_instances=1, coalesce=True)

    def run_once(self) -> int:
        try:
            return purge_expired(self._db, self._retention_days, self._batch_rows, self._clock, self._stop)
        except Exception:  # a failed purge is retried next time; the controller keeps running
            log.exception("records_purge_failed")
            return 0

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> None:
        self._stop.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
