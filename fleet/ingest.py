"""`fleet ingest`: workers that move station messages from the broker into PostgreSQL.

Each worker is one process with one MQTT 5 session (persistent: clean_start=false and a
session expiry) subscribed through the shared subscription `$share/ingest/edge/v1/+/+/evt/#`
(and the status and compartments topics), so the broker spreads the stations over the
workers. paho's manual ack: a message is acknowledged only after the batch holding it is
committed. A worker that dies (kill -9) leaves its unacknowledged messages in its session;
the supervisor restarts it under the same client id and the broker delivers them again;
what was committed but not yet acknowledged comes back as repeats, which the store drops.
"""
from __future__ import annotations

import importlib
import multiprocessing
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from fleet import db as fleet_db
from fleet import replay
from fleet.messages import Event, Parsed, Rejected, parse
from fleet.mqtt import connect_properties, new_client
from fleet.notify import Notifier
from fleet.settings import FleetSettings, load_settings
from fleet.store import BatchResult, IngestStore, Touched, merge_touched, unstorable

log = structlog.get_logger("fleet.ingest")

# Command replies come through the outbox too and carry seqs: without them every reply
# would leave a gap. `reply/#` also matches a Response Topic below the device's reply topic.
SUBSCRIBED_TOPICS = ("edge/v1/+/+/evt/#", "edge/v1/+/+/reply/#", "edge/v1/+/+/status",
                     "edge/v1/+/+/state/compartments")
DB_RETRY_S = 1.0
STALE_SWEEP_EVERY_S = 30.0  # recovery of bookkeeping a dead worker left undone
# The settler runs at most this often (ADR 0165): devices touched by many batches meanwhile
# are settled once, and a seq another worker holds is usually committed by then, so the
# holes that round-robin dealing leaves for a moment are seldom recorded as gaps.
SETTLE_EVERY_S = 0.5
# ... and pauses at least this many times as long as its last round took. Settling costs per
# device, and with round-robin dealing every worker touches nearly every device, so N
# settlers redo the same rows, one after the other (row locks): bounded to a third of each
# settler's time, they leave the database to the batches whatever N.
SETTLE_PAUSE_FACTOR = 2.0
MAX_WORKERS = 64  # the CLI's limit; sessions of higher indexes are retired at start


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Received:
    generation: int  # which connection delivered it; a mid means nothing on another one
    mid: int
    qos: int
    topic: str
    payload: bytes


class IngestWorker:
    """One worker: a paho network thread fills a queue; `run()` commits batches and acks."""

    def __init__(self, settings: FleetSettings, index: int, *, notifier: Notifier | None = None,
                 now: Callable[[], datetime] = utc_now) -> None:
        self._settings = settings
        self._ingest = settings.ingest
        self.client_id = f"{settings.mqtt.client_id_prefix}-ingest-{index}"
        self._now = now
        self._store = IngestStore(private_key=settings.private_key_bytes(), notifier=notifier, now=now)
        self._queue: queue.Queue[Received] = queue.Queue()
        self._generation = 0
        self._client: mqtt.Client | None = None
        self._conn: psycopg.Connection | None = None
        self._partitions_until: datetime | None = None
        self.subscribed = threading.Event()
        self._connected = threading.Event()
        self._session_present = False
        self._retiring = False
        self.totals = BatchResult()
        self._totals_lock = threading.Lock()
        # Devices committed but not yet settled (max seq, watermark, gaps): the settler
        # thread works them off in its own transactions, so row locks shared with other
        # workers never hold up an acknowledgement.
        self._touched: dict[tuple[str, str], Touched] = {}
        self._touched_lock = threading.Lock()

    # -- MQTT ------------------------------------------------------------------------------
    def _connect_mqtt(self) -> mqtt.Client:
        client = new_client(self._settings.mqtt, self.client_id, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_disconnect = lambda *_a: self.subscribed.clear()
        client.reconnect_delay_set(0.5, 10)
        mqtt_settings = self._settings.mqtt
        client.connect_async(mqtt_settings.host, mqtt_settings.port, mqtt_settings.keepalive_s,
                             clean_start=False,
                             properties=connect_properties(mqtt_settings.session_expiry_s,
                                                           self._ingest.receive_maximum))
        client.loop_start()
        return client

    def _on_connect(self, client: mqtt.Client, _userdata, flags, reason_code, _properties) -> None:  # noqa: ANN001
        if reason_code.is_failure:
            log.error("mqtt_refused", reason=str(reason_code))
            return
        self._generation += 1
        self._session_present = bool(flags.session_present)
        self._connected.set()
        if self._retiring:
            return  # retire(): the session's own subscriptions deliver what it holds
        group = self._settings.mqtt.share_group
        client.subscribe([(f"$share/{group}/{topic}", SubscribeOptions(qos=1)) for topic in SUBSCRIBED_TOPICS])
        self.subscribed.set()
        log.info("ingest_connected", client_id=self.client_id, session_present=flags.session_present)

    def _on_message(self, _client: mqtt.Client, _userdata, message: mqtt.MQTTMessage) -> None:  # noqa: ANN001
        self._queue.put(Received(self._generation, message.mid, message.qos, message.topic, message.payload))

    # -- the batch loop ----------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self._client = self._connect_mqtt()
        settler_stop = threading.Event()
        settler = threading.Thread(target=self._settle_loop, args=(settler_stop,), name="fleet-settler", daemon=True)
        settler.start()
        next_maintenance = 0.0
        try:
            while not stop.is_set():
                batch = self._take_batch()
                if batch:
                    self._commit_and_ack(batch, stop)
                if time.monotonic() >= next_maintenance:
                    self._maintain()
                    next_maintenance = time.monotonic() + self._ingest.maintenance_every_s
        finally:
            self._leave()
            self._client.loop_stop()
            settler_stop.set()
            settler.join(30)
            if self._conn is not None:
                self._conn.close()

    # -- settling: per-device max seq, watermark and gaps ---------------------------------------
    def _settle_loop(self, done: threading.Event) -> None:
        """Settle what the batches touched, and now and then sweep for devices a dead worker
        left unsettled (`settle_stale`): both lock devices' rows, which is kept off the batch
        loop's connection so that acknowledgements never wait on it."""
        conn: psycopg.Connection | None = None
        pause, next_sweep = SETTLE_EVERY_S, 0.0  # the sweep runs at start, then now and then
        while True:
            done.wait(pause)  # let batches gather (a stop cuts it short)
            with self._touched_lock:
                touched, self._touched = self._touched, {}
            started = time.monotonic()
            try:
                conn = conn if conn is not None and not conn.closed else fleet_db.connect(self._settings.database_url)
                result = self._store.settle(conn, touched) if touched else BatchResult()
                if started >= next_sweep:
                    swept = self._store.settle_stale(conn)
                    result.gaps_opened += swept.gaps_opened
                    result.gaps_closed += swept.gaps_closed
                    next_sweep = time.monotonic() + STALE_SWEEP_EVERY_S
                with self._totals_lock:
                    self.totals.gaps_opened += result.gaps_opened
                    self.totals.gaps_closed += result.gaps_closed
            except psycopg.Error as exc:
                log.warning("settle_failed", error=f"{type(exc).__name__}: {exc}", devices=len(touched))
                with self._touched_lock:
                    merge_touched(self._touched, touched)
                if conn is not None:
                    conn.close()
                conn = None
                if done.wait(DB_RETRY_S):
                    break
                continue
            pause = max(SETTLE_EVERY_S, SETTLE_PAUSE_FACTOR * (time.monotonic() - started))
            if done.is_set():
                with self._touched_lock:
                    if not self._touched:
                        break
        if conn is not None:
            conn.close()

    def retire(self, timeout_s: float = 30) -> bool:
        """End this index's session for good (the workers were scaled down): a broker keeps
        dealing a share group's messages to a member's offline session, so they would be
        stranded there. Take what the session holds, store and acknowledge it, leave the
        group, end the session. Returns whether a session was there."""
        self._retiring = True
        self._client = self._connect_mqtt()
        try:
            if not self._connected.wait(timeout_s):
                raise ConnectionError(f"{self.client_id}: the broker did not answer")
            if self._session_present:
                self.subscribed.set()  # the session's subscriptions: leave them below
            self._leave(end_session=True)
            if self._touched:
                self._store.settle(self._db(), self._touched)
        finally:
            self._client.loop_stop()
            if self._conn is not None:
                self._conn.close()
        if self._session_present:
            log.info("ingest_session_retired", client_id=self.client_id, stored=self.totals.stored)
        return self._session_present

    def _leave(self, end_session: bool = False) -> None:
        """Disconnect. A stop or restart keeps the session (messages queue there until the
        worker with this index is back); `end_session` (retire) first leaves the share group,
        stores and acknowledges what already arrived, then ends the session. If something
        could not be committed, the session stays for the next worker under this id."""
        client = self._client
        if not end_session or not self.subscribed.is_set():
            properties = None
            if end_session:
                properties = Properties(PacketTypes.DISCONNECT)
                properties.SessionExpiryInterval = 0
            client.disconnect(properties=properties)
            return
        left = threading.Event()
        client.on_unsubscribe = lambda *_a: left.set()
        group = self._settings.mqtt.share_group
        client.unsubscribe([f"$share/{group}/{topic}" for topic in SUBSCRIBED_TOPICS])
        # The broker sends UNSUBACK after every message it had dealt us, so once it arrives,
        # the queue holds everything this session owes.
        drained = left.wait(10)
        never = threading.Event()
        while drained:
            batch = self._take_batch()
            if not batch:
                break
            drained = self._commit_and_ack(batch, never, attempts=3)
        properties = None
        if drained:
            properties = Properties(PacketTypes.DISCONNECT)
            properties.SessionExpiryInterval = 0
        client.disconnect(properties=properties)

    def _take_batch(self) -> list[Received]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch, deadline = [first], time.monotonic() + self._ingest.batch_wait_s
        while len(batch) < self._ingest.batch_size:
            left = deadline - time.monotonic()
            try:
                batch.append(self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _commit_and_ack(self, batch: list[Received], stop: threading.Event, attempts: int | None = None) -> bool:
        """Commit, then acknowledge; False when given up (nothing acknowledged: the broker
        delivers it again)."""
        items = [_parse(r) for r in batch]
        tries = 0
        while True:
            try:
                result = self._store.write_batch(self._db(), items, settle=False)
                break
            except psycopg.Error as exc:  # database away, deadlock, missing partition: retry, never ack
                log.warning("batch_not_committed", error=f"{type(exc).__name__}: {exc}", size=len(batch))
                self._drop_db()
                tries += 1
                if stop.wait(DB_RETRY_S) or (attempts is not None and tries >= attempts):
                    return False
                self._maintain()
        for received in batch:
            # A message from an earlier connection is delivered again on this one; its old
            # mid may now name another message, so it is left to that redelivery.
            if received.qos > 0 and received.generation == self._generation:
                self._client.ack(received.mid, received.qos)
        self._count(result)
        if result.touched:
            with self._touched_lock:
                merge_touched(self._touched, result.touched)
        return True

    def _count(self, result: BatchResult) -> None:
        with self._totals_lock:
            for name in ("stored", "duplicates", "rejected", "snapshots", "notified"):
                setattr(self.totals, name, getattr(self.totals, name) + getattr(result, name))

    # -- maintenance: partitions ahead, replay requests ------------------------------------------
    def _maintain(self) -> None:
        now = self._now()
        try:
            conn = self._db()
            if self._partitions_until is None or now >= self._partitions_until:
                fleet_db.ensure_partitions(conn, now, months_ahead=1)
                self._partitions_until = fleet_db.month_start(now, 1)
            self._request_replays(conn, now)
        except psycopg.Error as exc:
            log.warning("maintenance_failed", error=f"{type(exc).__name__}: {exc}")
            self._drop_db()

    def _request_replays(self, conn: psycopg.Connection, now: datetime) -> None:
        if not self.subscribed.is_set():
            return
        due = replay.claim_due(conn, now, after=timedelta(seconds=self._ingest.gap_replay_after_s),
                               retry=timedelta(seconds=self._ingest.gap_replay_retry_s))
        for request in due:
            topic, payload = replay.replay_message(request, now, timedelta(seconds=self._ingest.replay_expires_s))
            self._client.publish(topic, payload, qos=1)
            log.info("replay_requested", site_id=request.site_id, device_id=request.device_id,
                     from_seq=request.from_seq, to_seq=request.to_seq, attempt=request.attempt)

    def _db(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = fleet_db.connect(self._settings.database_url)
        return self._conn

    def _drop_db(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
        self._conn = None


def _parse(received: Received) -> Parsed:
    """A message as the store takes it; an event PostgreSQL would refuse (and so fail its
    batch on every redelivery) is kept as rejected, with its raw payload."""
    item = parse(received.topic, received.payload)
    if isinstance(item, Event) and (reason := unstorable(item)) is not None:
        return Rejected(received.topic, received.payload, reason)
    return item


# -- processes ------------------------------------------------------------------------------
def load_notifier(spec: str) -> Notifier:
    """`module:Class` of a Notifier (an SMS provider's adapter), built without arguments."""
    module_name, _, class_name = spec.partition(":")
    return getattr(importlib.import_module(module_name), class_name)()


def worker_process(config_file: Path | None, index: int) -> None:
    """Entry point of one worker process: SIGTERM stops it after the batch in hand."""
    from edge.logs import configure_logging

    settings = load_settings(config_file)
    configure_logging(settings.log_level)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    IngestWorker(settings, index, notifier=load_notifier(settings.notifier)).run(stop)


def supervise(config_file: Path | None, workers: int, stop: threading.Event) -> None:
    """Run `workers` processes; one that dies is started again under the same index (so
    the same client id and session, where its unacknowledged messages wait)."""
    context = multiprocessing.get_context("spawn")
    processes: dict[int, multiprocessing.Process] = {}

    def start(index: int) -> None:
        process = context.Process(target=worker_process, args=(config_file, index),
                                  name=f"fleet-ingest-{index}", daemon=False)
        process.start()
        processes[index] = process
        log.info("worker_started", index=index, pid=process.pid)

    settings = load_settings(config_file)
    for index in range(workers, MAX_WORKERS):  # sessions left by a run with more workers
        try:
            IngestWorker(settings, index).retire()
        except (ConnectionError, OSError) as exc:  # the broker is away: the next start retires them
            log.warning("retire_skipped", index=index, error=str(exc))
            break
    for index in range(workers):
        start(index)
    while not stop.wait(0.5):
        for index, process in list(processes.items()):
            if not process.is_alive():
                log.warning("worker_died", index=index, pid=process.pid, exitcode=process.exitcode)
                start(index)
    for process in processes.values():
        if process.is_alive():
            process.terminate()
    for process in processes.values():
        process.join(10)
        if process.is_alive():
            process.kill()
