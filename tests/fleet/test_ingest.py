"""Ingest workers between a real Mosquitto and real PostgreSQL."""
from __future__ import annotations

import base64
import json
import uuid

import psycopg
from pydantic import SecretStr
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from fleet.ingest import IngestWorker
from fleet.notify import MemoryNotifier
from fleet.messages import parse
from fleet.simulate import Chaos, burst, connect_fleet, make_stations
from tests.support.fleet import count, seal, wait_until


def test_a_sealed_pickup_code_is_opened_and_handed_to_the_notifier(
        fleet_settings, pg: psycopg.Connection, start_worker, broker) -> None:
    private = X25519PrivateKey.generate()
    raw_private = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                        serialization.NoEncryption())
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    settings = fleet_settings.model_copy(
        update={"platform_private_key": SecretStr(base64.b64encode(raw_private).decode())})
    notifier = MemoryNotifier()
    start_worker(settings=settings, notifier=notifier)
    [link] = connect_fleet(settings.mqtt, make_stations(1), 1, name="seal-test")
    station = next(iter(link.stations.values()))
    message_id = str(uuid.uuid4())
    secret = {"pickup_code": "48291375", "pickup_token": "tok-abc", "phone": "13800138000"}
    body = {"message_id": message_id, "seq": 1, "type": "parcel.deposited",
            "ts": "2026-11-30T00:00:00.000Z", "site_id": station.site_id, "device_id": station.device_id,
            "data": {"compartment": 7, "parcel_id": "p-1", "phone": "138****8000",
                     "secret": seal(public, message_id, secret)}}
    topic = f"{station.prefix}/evt/parcel.deposited"
    link.client.publish(topic, json.dumps(body), qos=1).wait_for_publish(10)
    link.client.publish(topic, json.dumps(body), qos=1).wait_for_publish(10)  # a repeat: no second text
    # A secret moved to another message does not open (AAD = message_id), and is not texted.
    moved = {**body, "message_id": str(uuid.uuid4()), "seq": 2}
    link.client.publish(topic, json.dumps(moved), qos=1).wait_for_publish(10)
    wait_until(lambda: count(pg, "SELECT count(*) FROM events") == 2, what="both events stored")
    link.stop()

    assert len(notifier.sent) == 1
    sent = notifier.sent[0]
    assert sent.secret == secret and sent.message_id == message_id
    assert "secret" not in sent.data and sent.data["parcel_id"] == "p-1"
    pg.rollback()
    stored = pg.execute("SELECT data::text FROM events WHERE seq = 1").fetchone()[0]
    assert "48291375" not in stored and "13800138000" not in stored  # only ciphertext at rest


class CommitsButNeverAcks(IngestWorker):
    """A worker that dies between commit and ack: its messages are stored, not acknowledged."""

    def _commit_and_ack(self, batch, stop, attempts=None) -> bool:  # noqa: ANN001
        self._store.write_batch(self._db(), [parse(r.topic, r.payload) for r in batch])
        self.committed = getattr(self, "committed", 0) + len(batch)
        return True

    def _leave(self, end_session: bool = False) -> None:  # gone without a word: the session stays
        self._client.disconnect()


def test_messages_redelivered_after_commit_are_not_stored_twice(
        fleet_settings, pg: psycopg.Connection, start_worker) -> None:
    crashing = start_worker(0, CommitsButNeverAcks)
    links = connect_fleet(fleet_settings.mqtt, make_stations(5), 1, name="redeliver")
    burst(links, 10)
    wait_until(lambda: count(pg, "SELECT count(*) FROM events") == 50, what="50 events committed")
    crashing.stop()  # the session keeps the 50 unacknowledged messages

    again = start_worker(0)  # same client id: the broker delivers them again
    wait_until(lambda: again.worker.totals.duplicates >= 50, what="redelivered repeats dropped")
    for link in links:
        link.stop()
    assert count(pg, "SELECT count(*) FROM events") == 50
    assert count(pg, "SELECT count(DISTINCT message_id) FROM events") == 50
    assert again.worker.totals.stored == 0


def test_a_withheld_seq_is_replayed_by_the_station_and_the_gap_closes(
        fleet_settings, pg: psycopg.Connection, start_worker) -> None:
    start_worker(0)
    links = connect_fleet(fleet_settings.mqtt, make_stations(20), 2, name="gappy")
    report = burst(links, 15, chaos=Chaos(missing=0.05, duplicate=0.05, reorder=0.1), seed=7)
    assert report.withheld > 0 and report.duplicates > 0
    burst(links, 1)  # a missing tail shows only once a later seq arrives
    wait_until(lambda: count(pg, "SELECT count(*) FROM gaps") > 0, what="gaps detected")
    # The worker asks for each gap with outbox.replay; the stations publish it again.
    wait_until(lambda: count(pg, "SELECT count(*) FROM events") == 320, timeout=60, what="every event stored")
    wait_until(lambda: count(pg, "SELECT count(*) FROM gaps WHERE closed_at IS NULL") == 0, what="gaps closed")
    for link in links:
        link.stop()
    assert sum(link.replayed for link in links) >= report.withheld
    wait_until(lambda: count(pg, "SELECT count(*) FROM devices WHERE watermark = 16 AND max_seq = 16") == 20,
               what="every watermark at 16")
    assert count(pg, "SELECT count(DISTINCT message_id) FROM events") == 320
    withheld = [(site, device, seq) for (site, device), seqs in report.withheld_by_station.items() for seq in seqs]
    for site, device, seq in withheld:  # each withheld seq was in a gap the worker asked for
        assert count(pg, "SELECT count(*) FROM gaps WHERE site_id = %s AND device_id = %s AND from_seq <= %s "
                         "AND to_seq >= %s AND replay_count >= 1", site, device, seq, seq) >= 1


def test_a_stopped_worker_keeps_its_session_and_retiring_it_strands_nothing(
        fleet_settings, pg: psycopg.Connection, start_worker) -> None:
    start_worker(0)
    leaves = start_worker(1)
    links = connect_fleet(fleet_settings.mqtt, make_stations(20), 2, name="scale-down")
    burst(links, 5)
    wait_until(lambda: count(pg, "SELECT count(*) FROM events") == 100, what="the first 100 stored")
    leaves.stop()  # a stop (or a restart) keeps the session: the broker queues its share there
    burst(links, 5)
    wait_until(lambda: count(pg, "SELECT count(*) FROM events") >= 150, what="the live worker's share")
    assert count(pg, "SELECT count(*) FROM events") < 200  # part waits in the stopped session
    retired = IngestWorker(fleet_settings, 1)  # scaled down to one worker: `fleet ingest` does this
    assert retired.retire() is True
    assert retired.totals.stored > 0
    wait_until(lambda: count(pg, "SELECT count(*) FROM events") == 200, what="all 200 stored")
    assert IngestWorker(fleet_settings, 1).retire() is False  # the session is gone
    for link in links:
        link.stop()
    wait_until(lambda: count(pg, "SELECT count(*) FROM devices WHERE watermark = 10") == 20,
               what="every watermark at 10")
