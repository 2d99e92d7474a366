"""`outbox.replay` on the edge: published rows are kept for `outbox.keep_published_days` and
a replayed range goes out again with the same message_ids and seqs."""
from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timedelta, timezone

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy import select

from cloud_bridge import CommandRouter
from cloud_bridge.replay import OutboxReplay
from edge.clock import FakeClock, SystemClock
from edge.storage import outbox
from edge.storage.models import OutboxEvent
from tests.support.bridge import DEVICE, SITE, add_events


def published_seqs(db) -> list[int]:
    with db.read() as session:
        return list(session.scalars(select(OutboxEvent.seq).where(OutboxEvent.published_at.is_not(None))))


def test_published_rows_are_kept_for_the_replay_window(edge_db) -> None:
    clock = FakeClock(datetime(2026, 11, 1, tzinfo=timezone.utc))
    seqs = add_events(edge_db, 5)
    with edge_db.write() as session:
        outbox.mark_published(session, seqs[:3], clock.now() - timedelta(days=8))
        outbox.mark_published(session, seqs[3:], clock.now() - timedelta(days=1))
        deleted = outbox.prune(session, keep_published=0, telemetry_max_age=timedelta(days=30), clock=clock,
                               published_before=clock.now() - timedelta(days=7))
    assert deleted == 3
    assert published_seqs(edge_db) == seqs[3:]


class Platform:
    """A bare MQTT 5 peer: records every event and reply of the test device, sends commands."""

    def __init__(self, broker) -> None:
        self.messages: list[dict] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="platform-test",
                                  protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.subscribe([(f"edge/v1/{SITE}/{DEVICE}/evt/#", 1), (f"edge/v1/{SITE}/{DEVICE}/reply", 1)])
        self.client.loop_start()

    def _on_message(self, _c, _u, message) -> None:  # noqa: ANN001
        with self.lock:
            self.messages.append(json.loads(message.payload))

    def events(self) -> list[dict]:
        with self.lock:
            return [m for m in self.messages if m["type"] != "command.reply"]

    def replies(self) -> list[dict]:
        with self.lock:
            return [m for m in self.messages if m["type"] == "command.reply"]

    def replay(self, first: int, last: int, transaction_id: str) -> None:
        now = datetime.now(timezone.utc)
        body = {"message_id": str(uuid.uuid4()), "type": "outbox.replay", "ts": now.isoformat(),
                "transaction_id": transaction_id, "expires_at": (now + timedelta(hours=1)).isoformat(),
                "data": {"from_seq": first, "to_seq": last}}
        self.client.publish(f"edge/v1/{SITE}/{DEVICE}/cmd/outbox.replay", json.dumps(body), qos=1)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait(predicate, timeout: float = 20.0) -> None:  # noqa: ANN001
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_replayed_range_goes_out_again_with_the_same_ids_and_seqs(broker, make_bridge, edge_db) -> None:
    platform = Platform(broker)
    router = CommandRouter(edge_db, SystemClock())
    bridge = make_bridge(router)
    router.register("outbox.replay", OutboxReplay(edge_db, bridge))
    seqs = add_events(edge_db, 10)
    wait(lambda: len(platform.events()) == 10 and published_seqs(edge_db) == seqs)
    first_time = {m["seq"]: m for m in platform.events()}

    platform.replay(seqs[3], seqs[5], "replay-1")
    wait(lambda: len(platform.events()) == 13 and platform.replies())
    again = platform.events()[10:]
    assert [m["seq"] for m in again] == seqs[3:6]
    assert all(m == first_time[m["seq"]] for m in again)  # byte for byte the same envelope
    [reply] = platform.replies()
    assert reply["ok"] is True and reply["transaction_id"] == "replay-1"
    assert reply["data"]["republished"] == 3

    platform.replay(seqs[3], seqs[5], "replay-1")  # the same transaction runs once
    wait(lambda: len(platform.replies()) == 2)
    assert len(platform.events()) == 13 and platform.replies()[1]["duplicate"] is True
    platform.stop()
