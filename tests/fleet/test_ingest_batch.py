"""The one-statement batch write (ADR 0165) and the set-based gap bookkeeping, against real
PostgreSQL: repeats inside one batch and across batches are stored once, each stored event
is the row its key names, and the gaps follow the same rule as `missing_ranges`."""
from __future__ import annotations

import json
import random
import uuid

import psycopg

from fleet.messages import parse
from fleet.simulate import connect_fleet, make_stations
from fleet.store import IngestStore, missing_ranges, unstorable
from tests.support.fleet import NOW, count, wait_until


def envelope(seq: int, *, device: str = "k1", type_: str = "door.opened", message_id: str | None = None,
             data: dict | None = None, ts: str = "2026-11-30T00:59:00.000Z") -> tuple[str, bytes]:
    body = {"message_id": message_id or str(uuid.uuid4()), "seq": seq, "type": type_, "ts": ts,
            "site_id": "s1", "device_id": device, "data": data if data is not None else {"compartment": seq}}
    return f"edge/v1/s1/{device}/evt/{type_}", json.dumps(body, ensure_ascii=False).encode()


def writer() -> IngestStore:
    return IngestStore(private_key=None, notifier=None, now=lambda: NOW)


def stored_rows(pg: psycopg.Connection) -> list[tuple]:
    return pg.execute("SELECT e.device_id, e.seq, e.message_id::text, (e.data->>'compartment')::int FROM events e "
                      "JOIN event_keys k USING (site_id, device_id, seq, message_id) ORDER BY 1, 2").fetchall()


def test_repeats_inside_one_batch_are_stored_once_and_each_event_is_its_keys_row(pg: psycopg.Connection) -> None:
    same_id = str(uuid.uuid4())
    one = envelope(1)
    batch = [
        one, one,  # the same message twice (a QoS 1 redelivery inside the batch)
        envelope(3, message_id=same_id), envelope(2, message_id=same_id),  # one message_id under two seqs
        envelope(4, data={"compartment": 41}), envelope(4, data={"compartment": 42}),  # one seq, two message_ids
        envelope(5),
    ]
    result = writer().write_batch(pg, [parse(*m) for m in batch])

    assert (result.stored, result.duplicates) == (4, 3)
    assert pg.execute("SELECT count(*) FROM event_keys").fetchone()[0] == 4
    rows = stored_rows(pg)  # joined on all four key columns: an event without its exact key is missing here
    assert [(device, seq) for device, seq, _, _ in rows] == [("k1", 1), ("k1", 2), ("k1", 4), ("k1", 5)]
    assert pg.execute("SELECT count(*) FROM events").fetchone()[0] == 4
    assert sorted(result.stored_ids) == sorted(message_id for _, _, message_id, _ in rows)
    assert rows[2][3] in (41, 42)  # whichever seq 4 won, its event carries its own data
    assert result.touched[("s1", "k1")].max_seq == 5


def test_repeats_across_batches_are_dropped_and_only_the_new_ones_stored(pg: psycopg.Connection) -> None:
    first = [envelope(seq) for seq in (1, 2, 3)]
    store = writer()
    assert store.write_batch(pg, [parse(*m) for m in first]).stored == 3
    new = envelope(4)
    again = store.write_batch(pg, [parse(*m) for m in [first[1], new, first[0], envelope(2), new]])

    assert (again.stored, again.duplicates) == (1, 4)
    assert again.stored_ids == [json.loads(new[1])["message_id"]]
    assert list(again.touched) == [("s1", "k1")] and again.touched[("s1", "k1")].max_seq == 4
    assert [seq for _, seq, _, _ in stored_rows(pg)] == [1, 2, 3, 4]
    assert pg.execute("SELECT watermark, max_seq FROM devices").fetchone() == (4, 4)


def test_data_and_station_time_are_stored_as_sent(pg: psycopg.Connection) -> None:
    data = {"compartment": 7, "note": "快递已存：请取件，谢谢", "nested": {"list": [1, 2.5, None, True]}}
    writer().write_batch(pg, [parse(*envelope(1, data=data, ts="2026-11-30T08:59:00.123+08:00"))])

    stored_data, ts = pg.execute("SELECT data, ts FROM events").fetchone()
    assert stored_data == data
    assert ts.isoformat(timespec="milliseconds") == "2026-11-30T00:59:00.123+00:00"


def test_only_stored_events_are_projected(pg: psycopg.Connection) -> None:
    booking = envelope(1, type_="booking.requested", data={"booking_id": "b-1", "service": "理发"})
    result = writer().write_batch(pg, [parse(*booking), parse(*booking), parse(*envelope(2))])

    assert result.stored == 2
    assert pg.execute("SELECT booking_id, data->>'service' FROM bookings").fetchall() == [("b-1", "理发")]


def test_gaps_follow_missing_ranges_whatever_order_the_seqs_arrive_in(pg: psycopg.Connection) -> None:
    """Seqs of several devices arrive shuffled over many batches (as when workers share a
    device); after every settle each missing range lies in an open gap, each open gap still
    has something missing, and once everything is in, no gap is open."""
    rng = random.Random(14)
    devices = {f"k{i}": list(range(1, rng.randint(5, 40))) for i in range(6)}
    arrivals = [(device, seq) for device, seqs in devices.items() for seq in seqs]
    rng.shuffle(arrivals)
    store = writer()
    for start in range(0, len(arrivals), 17):
        chunk = arrivals[start:start + 17]
        store.write_batch(pg, [parse(*envelope(seq, device=device)) for device, seq in chunk])
        for device in devices:
            row = pg.execute("SELECT watermark FROM devices WHERE device_id = %s", (device,)).fetchone()
            watermark = row[0] if row else 0
            keys = [r[0] for r in pg.execute("SELECT seq FROM event_keys WHERE device_id = %s ORDER BY seq",
                                             (device,))]
            assert watermark == max([0] + [s for i, s in enumerate(keys, 1) if s == i])  # top of the run from 1
            missing = missing_ranges(watermark, [s for s in keys if s > watermark])
            gaps = pg.execute("SELECT from_seq, to_seq FROM gaps WHERE device_id = %s AND closed_at IS NULL",
                              (device,)).fetchall()
            overlaps = lambda a, b: a[0] <= b[1] and b[0] <= a[1]  # noqa: E731
            assert all(any(overlaps(m, g) for g in gaps) for m in missing), (device, missing, gaps)
            assert all(any(overlaps(g, m) for m in missing) for g in gaps), (device, missing, gaps)

    assert pg.execute("SELECT count(*) FROM gaps WHERE closed_at IS NULL").fetchone()[0] == 0
    assert pg.execute("SELECT count(*) FROM gaps").fetchone()[0] > 0  # there were holes on the way
    tops = dict(pg.execute("SELECT device_id, watermark FROM devices").fetchall())
    assert tops == {device: len(seqs) for device, seqs in devices.items()}


def test_a_batch_of_known_devices_does_not_wait_for_a_settler_holding_their_rows(
        pg: psycopg.Connection, database_url: str) -> None:
    store = writer()
    store.write_batch(pg, [parse(*envelope(1, device=device)) for device in ("k1", "k2")], settle=False)
    pg.commit()
    with psycopg.connect(pg.info.dsn) as settler:  # a settler of any worker, mid-transaction
        settler.execute("UPDATE devices SET max_seq = 1 WHERE device_id IN ('k1', 'k2')")
        pg.execute("SET lock_timeout = '1s'")  # a wait on the settler would fail the batch
        result = store.write_batch(pg, [parse(*envelope(2, device=device)) for device in ("k1", "k2")], settle=False)
        assert result.stored == 2
        # A device this store has not seen yet gets its row in the batch.
        assert store.write_batch(pg, [parse(*envelope(1, device="k3"))], settle=False).stored == 1
        settler.rollback()
    pg.execute("RESET lock_timeout")
    assert [r[0] for r in pg.execute("SELECT device_id FROM devices ORDER BY 1")] == ["k1", "k2", "k3"]


def test_an_event_postgresql_would_refuse_is_kept_as_rejected_and_ingest_goes_on(
        fleet_settings, pg: psycopg.Connection, start_worker) -> None:
    """A NUL in data (jsonb refuses it), a lone surrogate (not UTF-8) or a seq beyond bigint
    failed the whole batch on every redelivery: the worker stalled on it for good."""
    worker = start_worker(0)
    [link] = connect_fleet(fleet_settings.mqtt, make_stations(1), 1, name="poison")
    station = next(iter(link.stations.values()))
    topic = f"{station.prefix}/evt/door.opened"

    def body(seq: int, data_json: str) -> bytes:
        return (f'{{"message_id":"{uuid.uuid4()}","seq":{seq},"type":"door.opened","ts":"2026-11-30T00:59:00Z",'
                f'"site_id":"{station.site_id}","device_id":"{station.device_id}","data":{data_json}}}').encode()

    refused = [body(1, '{"note":"a\\u0000b"}'), body(2, '{"note":"\\ud800"}'), body(2 ** 63, '{}')]
    for payload in refused + [body(1, '{"note":"\\\\u0000 is fine escaped"}'), body(2, "{}")]:
        link.client.publish(topic, payload, qos=1).wait_for_publish(10)
    wait_until(lambda: count(pg, "SELECT count(*) FROM events") == 2, what="the storable events stored")
    wait_until(lambda: count(pg, "SELECT count(*) FROM rejected_messages") == 3, what="the others kept as rejected")
    link.stop()

    reasons = sorted(r[0] for r in pg.execute("SELECT reason FROM rejected_messages"))
    assert [r.split()[0:3] for r in reasons] == [["data", "holds", "a"], ["data", "holds", "a"], ["seq", "beyond", "a"]]
    assert sorted(bytes(r[0]) for r in pg.execute("SELECT payload FROM rejected_messages")) == sorted(refused)
    assert pg.execute("SELECT data->>'note' FROM events WHERE seq = 1").fetchone()[0] == "\\u0000 is fine escaped"
    assert worker.worker.totals.rejected == 3 and worker.thread.is_alive()
    assert unstorable(parse(topic, body(3, '{"ok":true}'))) is None
