"""The batch writer against real PostgreSQL: dedup, watermark, gaps, partitions, rejects."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import psycopg

from fleet import db as fleet_db
from fleet.messages import Rejected, Snapshot, parse
from fleet.store import IngestStore, missing_ranges

from tests.support.fleet import NOW  # noqa: E402 - after the imports it sits among


def envelope(seq: int, *, site: str = "s1", device: str = "k1", type_: str = "door.opened",
             message_id: str | None = None, data: dict | None = None) -> tuple[str, bytes]:
    body = {"message_id": message_id or str(uuid.uuid4()), "seq": seq, "type": type_,
            "ts": "2026-11-30T00:59:00.000Z", "site_id": site, "device_id": device,
            "data": data if data is not None else {"compartment": 3}}
    return f"edge/v1/{site}/{device}/evt/{type_}", json.dumps(body).encode()


def store(clock=lambda: NOW) -> IngestStore:
    return IngestStore(private_key=None, notifier=None, now=clock)


def device_row(pg: psycopg.Connection, device: str = "k1") -> tuple:
    return pg.execute("SELECT watermark, max_seq FROM devices WHERE device_id = %s", (device,)).fetchone()


def test_a_redelivered_batch_stores_nothing_twice(pg: psycopg.Connection) -> None:
    batch = [parse(*envelope(seq)) for seq in (1, 2, 3)]
    first = store().write_batch(pg, batch)
    again = store().write_batch(pg, batch + [parse(*envelope(2))])  # same seq, new message_id
    assert (first.stored, first.duplicates) == (3, 0)
    assert (again.stored, again.duplicates) == (0, 4)
    assert pg.execute("SELECT count(*) FROM events").fetchone()[0] == 3
    assert device_row(pg) == (3, 3)


def test_a_message_id_repeated_under_another_seq_is_dropped(pg: psycopg.Connection) -> None:
    message_id = str(uuid.uuid4())
    result = store().write_batch(pg, [parse(*envelope(1, message_id=message_id)),
                                      parse(*envelope(2, message_id=message_id))])
    assert (result.stored, result.duplicates) == (1, 1)


def test_gaps_open_then_close_as_the_missing_seqs_arrive(pg: psycopg.Connection) -> None:
    writer = store()
    opened = writer.write_batch(pg, [parse(*envelope(s)) for s in (1, 2, 5, 6, 9)])
    assert opened.gaps_opened == 2
    assert device_row(pg) == (2, 9)
    gaps = pg.execute("SELECT from_seq, to_seq FROM gaps WHERE closed_at IS NULL ORDER BY from_seq").fetchall()
    assert gaps == [(3, 4), (7, 8)]
    writer.write_batch(pg, [parse(*envelope(s)) for s in (4, 3)])  # out of order
    assert device_row(pg) == (6, 9)
    assert pg.execute("SELECT from_seq FROM gaps WHERE closed_at IS NULL").fetchall() == [(7,)]
    writer.write_batch(pg, [parse(*envelope(s)) for s in (8, 7)])
    assert device_row(pg) == (9, 9)
    assert pg.execute("SELECT count(*) FROM gaps WHERE closed_at IS NOT NULL").fetchone()[0] == 2


def test_a_first_missing_seq_is_a_gap(pg: psycopg.Connection) -> None:
    store().write_batch(pg, [parse(*envelope(3))])
    assert device_row(pg) == (0, 3)
    assert pg.execute("SELECT from_seq, to_seq FROM gaps").fetchall() == [(1, 2)]


def test_missing_ranges() -> None:
    assert missing_ranges(2, [5, 6, 9]) == [(3, 4), (7, 8)]
    assert missing_ranges(0, []) == []


def test_bad_input_is_kept_with_a_reason_and_the_rest_is_stored(pg: psycopg.Connection) -> None:
    items = [parse("edge/v1/s1/k1/evt/door.opened", b"not json"),
             parse(*envelope(0)),  # seq must be >= 1
             parse(*envelope(1))]
    assert isinstance(items[0], Rejected) and isinstance(items[1], Rejected)
    result = store().write_batch(pg, items)
    assert (result.stored, result.rejected) == (1, 2)
    reasons = [r[0] for r in pg.execute("SELECT reason FROM rejected_messages ORDER BY id")]
    assert reasons[0] == "payload is not UTF-8 JSON" and "seq" in reasons[1]


def test_status_keeps_the_newest_by_station_time(pg: psycopg.Connection) -> None:
    def status(online: bool, ts: str) -> Snapshot:
        body = {"message_id": str(uuid.uuid4()), "type": "status", "ts": ts, "site_id": "s1",
                "device_id": "k1", "data": {"online": online, "version": "1", "started_at": ts}}
        return parse("edge/v1/s1/k1/status", json.dumps(body).encode())

    store().write_batch(pg, [status(False, "2026-11-30T00:10:00Z"), status(True, "2026-11-30T00:05:00Z")])
    assert pg.execute("SELECT online FROM devices").fetchone()[0] is False


def test_events_land_in_monthly_partitions_created_ahead(pg: psycopg.Connection) -> None:
    created = fleet_db.ensure_partitions(pg, datetime(2031, 12, 15, tzinfo=timezone.utc), months_ahead=1)
    assert created == ["events_203112", "events_203201"]
    assert fleet_db.ensure_partitions(pg, datetime(2031, 12, 15, tzinfo=timezone.utc)) == []
    store(lambda: datetime(2032, 1, 2, tzinfo=timezone.utc)).write_batch(pg, [parse(*envelope(1))])
    assert pg.execute("SELECT count(*) FROM events_203201").fetchone()[0] == 1
    kind = pg.execute("SELECT relkind FROM pg_class WHERE relname = 'events'").fetchone()[0]
    assert kind == "p"  # declaratively partitioned


def test_bookkeeping_a_dead_worker_left_undone_is_recovered(pg: psycopg.Connection) -> None:
    writer = store()
    writer.write_batch(pg, [parse(*envelope(s)) for s in (1, 2, 4)], settle=False)  # died before settling
    assert device_row(pg) == (0, 0)  # the device has a row, its bookkeeping is behind
    recovered = writer.settle_stale(pg)
    assert device_row(pg) == (2, 4) and recovered.gaps_opened == 1
    assert pg.execute("SELECT from_seq, to_seq FROM gaps").fetchall() == [(3, 3)]
    assert writer.settle_stale(pg).gaps_opened == 0  # nothing new: the open gap is already known
