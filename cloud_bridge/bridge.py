"""The MQTT 5 side of the edge: drains the outbox with QoS 1, keeps the retained status and
compartment snapshot, and passes commands to the CommandRouter.

Durability never rests on paho's memory (ADR 0030): a row leaves the outbox only when the
PUBACK for exactly its message arrives; every connection uses a fresh paho client, so after
any disconnect whatever was not acknowledged is sent again from the database (a repeat
keeps its message_id and seq, and the cloud drops it). At most `window` messages are in
flight, so paho never holds more than that.

Threads: `network` (connect with capped, jittered backoff; run paho's loop; survive any
exception), `pump` (fill the window from SQLite, settle PUBACKs, publish state, prune) and
`commands` (run commands one at a time, acknowledge each after its reply is stored).
"""
from __future__ import annotations

import queue
import random
import ssl
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud_bridge.commands import REPLY_TYPE, CommandRouter, Route, to_plain
from cloud_bridge.envelope import Envelopes
from cloud_bridge.models import ProcessedCommand
from edge.clock import Clock, iso_utc
from edge.logs import get_logger
from edge.settings import Settings
from edge.storage import Database, outbox
from sqlalchemy import delete

log = get_logger("cloud_bridge")

STATE_DEBOUNCE_S = 0.5
MAINTENANCE_EVERY_S = 30.0
STATUS_EVERY_S = 60.0  # the retained status's health summary is this fresh
FAILED_PUBLISH_HOLD_S = 5.0
ACK_BATCH = 200  # PUBACKs marked published in one transaction
ACK_FLUSH_S = 0.02  # ... or after this long
REFILL_FRACTION = 4  # refill once this fraction of the window is free
PROCESSED_COMMANDS_KEPT = timedelta(days=30)

_NOTHING_SENT = outbox.NOTHING_SENT


class Topics:
    def __init__(self, site_id: str, device_id: str) -> None:
        self.prefix = f"edge/v1/{site_id}/{device_id}"
        self.status = f"{self.prefix}/status"
        self.compartments = f"{self.prefix}/state/compartments"
        self.reply = f"{self.prefix}/reply"
        self.commands = f"{self.prefix}/cmd/#"

    def event(self, type_: str) -> str:
        return f"{self.prefix}/evt/{type_}"

    def command_name(self, topic: str) -> str:
        return topic[len(self.prefix) + len("/cmd/"):]



def reconnect_delay(attempt: int, min_s: float, max_s: float,
                    uniform: Callable[[float, float], float] = random.uniform) -> float:
    """Capped exponential backoff with jitter: a fleet that lost its broker together does
    not come back in step, and no box waits longer than max_s between tries."""
    ceiling = min(max_s, min_s * 2 ** min(attempt, 16))
    return uniform(ceiling / 2, ceiling)

class Bridge:
    def __init__(self, settings: Settings, db: Database, router: CommandRouter, *, clock: Clock,
                 version: str, compartments: Callable[[], list[dict[str, Any]]] | None = None) -> None:
        self._mqtt = settings.mqtt
        self._budget = settings.outbox
        self._db = db
        self._router = router
        self._clock = clock
        self._version = version
        self._started_at = iso_utc(clock.now())
        self._compartments = compartments
        self.topics = Topics(self._mqtt.site_id, self._mqtt.device_id)
        self._envelopes = Envelopes(self._mqtt.site_id, self._mqtt.device_id)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._closing = threading.Event()
        self._client: mqtt.Client | None = None  # set while a session is up
        self._receive_maximum = 65535
        self._acks: queue.SimpleQueue[tuple[mqtt.Client, int, bool]] = queue.SimpleQueue()
        self._commands: queue.Queue[tuple[mqtt.Client, mqtt.MQTTMessage]] = queue.Queue(maxsize=1000)
        self._inflight: dict[int, int] = {}  # mid -> seq; pump thread only
        self._inflight_client: mqtt.Client | None = None
        self._sent_up_to = _NOTHING_SENT  # (priority, seq): see outbox.pending_rows; pump thread only
        self._held: dict[int, float] = {}  # seq -> monotonic time to retry a refused publish
        self._acked: list[int] = []  # PUBACKed, to be marked published in the next batch
        self._acked_since: float | None = None
        self._state_due: float | None = None
        self._threads: list[threading.Thread] = []
        self._remove_listener: Callable[[], None] | None = None
        self.connected = threading.Event()
        self.connect_failures = 0  # attempts that did not reach a session (diagnostics, tests)
        self.last_puback_at: float | None = None  # wall-clock time of the last event PUBACK (metrics)
        # A short health summary for the retained status (set by the composition root).
        self.health: Callable[[], dict[str, Any]] | None = None
        self._status_due = 0.0

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._remove_listener = outbox.on_event_committed(self._wake.set)
        workers: list[Callable[[], None]] = [self._pump_loop]
        if self._mqtt.host:
            workers += [self._network_loop, self._command_loop]
        else:
            log.warning("mqtt_offline", reason="no mqtt.host set: events queue in the outbox")
        for work in workers:
            thread = threading.Thread(target=work, name=f"bridge-{work.__name__.strip('_')}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Say goodbye (retained offline status), disconnect, and join the threads."""
        self._closing.set()
        client = self._client
        if client is not None:
            try:
                client.publish(self.topics.status, self._status(False), qos=1, retain=True).wait_for_publish(2)
                client.disconnect()
            except Exception:  # noqa: BLE001 - the Last Will says the same thing
                log.warning("mqtt_goodbye_failed")
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._remove_listener:
            self._remove_listener()

    def compartments_changed(self, *_args: Any) -> None:
        """A locker subscriber: republish the snapshot soon (several changes, one message)."""
        if self._state_due is None:
            self._state_due = time.monotonic() + STATE_DEBOUNCE_S
            self._wake.set()

    # -- network thread ----------------------------------------------------------------
    def _network_loop(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                client = self._new_client()
                client.connect(self._mqtt.host, self._mqtt.port, self._mqtt.keepalive_s,
                               clean_start=False, properties=self._connect_properties())
            except Exception as exc:  # noqa: BLE001 - refused, unreachable, TLS failure: retry, never downgrade
                log.warning("mqtt_connect_failed", host=self._mqtt.host, port=self._mqtt.port,
                            error=f"{type(exc).__name__}: {exc}", attempt=attempt)
                self.connect_failures += 1
                attempt = self._backoff(attempt)
                continue
            if self._serve(client):
                attempt = 0
            else:  # refused (CONNACK failure) or dropped before a session
                self.connect_failures += 1
            if not self._stop.is_set():
                attempt = self._backoff(attempt)

    def _serve(self, client: mqtt.Client) -> bool:
        """Run paho's loop until the connection ends; True if a session was established."""
        established = False
        while not self._stop.is_set():
            try:
                rc = client.loop(timeout=0.5)
            except Exception:  # noqa: BLE001 - a fault in paho or a callback ends this connection only
                log.exception("mqtt_loop_failed")
                rc = MQTTErrorCode.MQTT_ERR_UNKNOWN
            established = established or self._client is client
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
        self._lost(client)
        try:
            client.disconnect()
        except Exception:  # noqa: BLE001
            pass
        return established

    def _backoff(self, attempt: int) -> int:
        self._stop.wait(reconnect_delay(attempt, self._mqtt.reconnect_min_s, self._mqtt.reconnect_max_s))
        return attempt + 1

    def _new_client(self) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2,
                             client_id=f"{self._mqtt.site_id}.{self._mqtt.device_id}",
                             protocol=MQTTProtocolVersion.MQTTv5, manual_ack=True)
        client.suppress_exceptions = True  # paho logs a callback's exception instead of dying
        client.max_inflight_messages_set(self._mqtt.window + 4)
        client.max_queued_messages_set(self._mqtt.window + 8)  # the window + status + snapshot
        if self._mqtt.uses_tls:
            cert = self._mqtt.client_cert or self._mqtt.tls_cert
            key = self._mqtt.client_key or self._mqtt.tls_key
            client.tls_set(ca_certs=str(self._mqtt.tls_ca) if self._mqtt.tls_ca else None,
                           certfile=str(cert) if cert else None, keyfile=str(key) if key else None,
                           cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        if self._mqtt.username:
            client.username_pw_set(self._mqtt.username, self._mqtt.password())
        client.will_set(self.topics.status, self._status(False), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        # Without loop_start(), paho writes to the socket from whichever thread publishes; the
        # pump and the network thread would then interleave packets and reorder events. A
        # write-registration callback makes publish() only queue, and the network thread write.
        client.on_socket_register_write = lambda *_: None
        return client

    def _connect_properties(self) -> Properties:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self._mqtt.session_expiry_s
        return properties

    def _on_connect(self, client: mqtt.Client, _userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        if reason_code.is_failure:
            log.error("mqtt_refused", reason=str(reason_code))
            return
        self._receive_maximum = getattr(properties, "ReceiveMaximum", 65535)
        client.subscribe(self.topics.commands, qos=1)
        client.publish(self.topics.status, self._status(True), qos=1, retain=True)
        self._client = client
        self.connected.set()
        if self._compartments is not None:
            self._state_due = time.monotonic()
        log.info("mqtt_connected", host=self._mqtt.host, session_present=flags.session_present)
        self._wake.set()

    def _on_disconnect(self, client: mqtt.Client, *_args: Any) -> None:
        self._lost(client)

    def _lost(self, client: mqtt.Client) -> None:
        if self._client is client:
            self._client = None
            self.connected.clear()
            log.warning("mqtt_disconnected")
            self._wake.set()

    def _on_publish(self, client: mqtt.Client, _userdata: Any, mid: int, reason_code: Any,
                    _properties: Any) -> None:
        self._acks.put((client, mid, not reason_code.is_failure))
        self._wake.set()

    def _on_message(self, client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self._commands.put_nowait((client, message))
        except queue.Full:  # not acknowledged: the broker delivers it again
            log.warning("command_queue_full", topic=message.topic[:200])

    # -- pump thread -------------------------------------------------------------------
    def _pump_loop(self) -> None:
        next_maintenance = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(self._pump_timeout())
            self._wake.clear()
            try:
                client = self._client
                if client is not self._inflight_client:  # new session: resend everything unacked
                    self._inflight.clear()
                    self._inflight_client = client
                    self._sent_up_to = _NOTHING_SENT
                self._settle_acks()
                if client is not None and not self._closing.is_set():
                    self._fill_window(client)
                    self._publish_compartments(client)
                # After refilling: waiting for the write lock here leaves a full window in flight.
                self._flush_acked_when_due()
                if time.monotonic() >= next_maintenance:
                    self._maintain()
                    self._refresh_status()
                    next_maintenance = time.monotonic() + MAINTENANCE_EVERY_S
            except Exception:  # noqa: BLE001 - e.g. the database is busy: try again shortly
                log.exception("bridge_pump_failed")
                self._stop.wait(1.0)
        self._flush_acked()

    def _flush_acked(self) -> None:
        if self._acked:
            with self._db.write() as session:
                outbox.mark_published(session, self._acked, self._clock.now())
            self._acked = []
            self._acked_since = None

    def _pump_timeout(self) -> float:
        deadlines = [d for d in (self._state_due, self._acked_since and self._acked_since + ACK_FLUSH_S)
                     if d is not None]
        if not deadlines:
            return 1.0
        return min(1.0, max(0.005, min(deadlines) - time.monotonic()))

    def _settle_acks(self) -> None:
        while True:
            try:
                client, mid, ok = self._acks.get_nowait()
            except queue.Empty:
                break
            if client is not self._inflight_client or mid not in self._inflight:
                continue  # status, snapshot, or an earlier session's message (it will repeat)
            seq = self._inflight.pop(mid)
            if ok:
                self._acked.append(seq)
                self.last_puback_at = time.time()
                self._acked_since = self._acked_since or time.monotonic()
            else:
                log.warning("mqtt_publish_refused", seq=seq)
                self._held[seq] = time.monotonic() + FAILED_PUBLISH_HOLD_S

    def _flush_acked_when_due(self) -> None:
        # One durable commit per batch of PUBACKs, not per PUBACK: a crash before it only
        # means those rows are sent again (same message_id), never that one is lost.
        if self._acked and (len(self._acked) >= ACK_BATCH or not self._inflight
                            or time.monotonic() - self._acked_since >= ACK_FLUSH_S):
            self._flush_acked()

    def _fill_window(self, client: mqtt.Client) -> None:
        window = max(1, min(self._mqtt.window, self._receive_maximum - 2))
        room = window - len(self._inflight)
        # Refill in steps of a quarter window, not on every PUBACK: one query sends many rows
        # (ADR 0037). The rest of the window is still in flight, so the link never idles.
        if room <= 0 or (self._inflight and room < max(1, window // REFILL_FRACTION)):
            return
        if self._held:  # a held row lies below the mark: look at every pending row again
            self._sent_up_to = _NOTHING_SENT
        now = time.monotonic()
        self._held = {seq: until for seq, until in self._held.items() if until > now}
        busy = set(self._inflight.values()) | set(self._held) | set(self._acked)
        with outbox.pending_rows(self._db, self._sent_up_to, room + len(busy)) as rows:
            for row in rows:
                if row[0] in busy:
                    continue
                topic, payload, properties = self._encode(row)
                info = client.publish(topic, payload, qos=1, properties=properties)
                if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break  # the session ended; the next one resends
                self._inflight[info.mid] = row[0]
                self._sent_up_to = (row[7], row[0])
                room -= 1
                if room == 0:
                    break

    def _encode(self, row: Any) -> tuple[str, str, Properties | None]:
        seq, message_id, type_, ts, data, route_topic, correlation, *_priority = row
        if type_ != REPLY_TYPE:
            return self.topics.event(type_), self._envelopes.event(message_id, seq, type_, ts, data), None
        properties = None
        if correlation is not None:
            properties = Properties(PacketTypes.PUBLISH)
            properties.CorrelationData = bytes(correlation)
        payload = self._envelopes.reply(message_id, seq, type_, ts, data)
        return route_topic or self.topics.reply, payload, properties

    def _publish_compartments(self, client: mqtt.Client) -> None:
        if self._compartments is None or self._state_due is None or time.monotonic() < self._state_due:
            return
        try:
            snapshot = to_plain(self._compartments())
        except Exception:  # noqa: BLE001 - events keep flowing; the snapshot is tried again
            log.exception("compartments_snapshot_failed")
            self._state_due = time.monotonic() + 2.0
            return
        self._state_due = None
        message = self._envelopes.message("state.compartments", self._clock.now(), {"compartments": snapshot})
        info = client.publish(self.topics.compartments, message,
                              qos=1, retain=True)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._state_due = time.monotonic() + STATE_DEBOUNCE_S

    def _maintain(self) -> None:
        with self._db.write() as session:
            deleted = outbox.prune(session, keep_published=self._budget.published_tail_rows,
                                   telemetry_max_age=timedelta(seconds=self._budget.telemetry_max_age_s),
                                   clock=self._clock, published_before=self._clock.now()
                                   - timedelta(days=self._budget.keep_published_days))
            session.execute(delete(ProcessedCommand).where(
                ProcessedCommand.received_at < self._clock.now() - PROCESSED_COMMANDS_KEPT))
        if deleted:
            log.info("outbox_pruned", published_rows=deleted)

    def publish_again(self, rows: list[Any]) -> int:
        """Publish rows already published, as they were (same message_id and seq), for
        `outbox.replay`. Not tracked in the window: if one is lost, the platform asks again.
        Rows are (seq, message_id, type, ts, data, route topic, correlation data, priority)."""
        client = self._client
        if client is None:
            raise ConnectionError("not connected to the broker")
        for row in rows:
            topic, payload, properties = self._encode(row)
            client.publish(topic, payload, qos=1, properties=properties)
        self._wake.set()
        return len(rows)

    def _status(self, online: bool) -> str:
        data: dict[str, Any] = {"online": online, "version": self._version, "started_at": self._started_at}
        if self.health is not None:
            try:
                data["health"] = self.health()
            except Exception:  # noqa: BLE001 - the status goes out without it
                log.exception("health_summary_failed")
        return self._envelopes.message("status", self._clock.now(), data)

    def _refresh_status(self) -> None:
        """Re-publish the retained status with a fresh health summary, every STATUS_EVERY_S."""
        client = self._client
        if client is None or self.health is None or time.monotonic() < self._status_due:
            return
        self._status_due = time.monotonic() + STATUS_EVERY_S
        client.publish(self.topics.status, self._status(True), qos=1, retain=True)

    # -- commands thread ---------------------------------------------------------------
    def _command_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, message = self._commands.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self._router.handle(self.topics.command_name(message.topic), message.payload,
                                    _route_of(message, self.topics.reply))
            except Exception:  # noqa: BLE001 - not acknowledged: the broker delivers it again
                log.exception("command_not_recorded", topic=message.topic[:200])
                continue
            if client is self._client:
                client.ack(message.mid, message.qos)
            self._wake.set()


def _route_of(message: mqtt.MQTTMessage, reply_topic: str) -> Route:
    """The reply's route. A Response Topic outside the device's own reply namespace
    (`reply_topic` or below it) is not honoured: the router refuses the command on the
    default reply topic instead, so a command cannot make the edge publish elsewhere."""
    properties = getattr(message, "properties", None)
    topic = getattr(properties, "ResponseTopic", None)
    correlation = getattr(properties, "CorrelationData", None)
    correlation = bytes(correlation) if correlation else None
    if topic is None or topic == "":
        return Route(correlation_data=correlation)
    inside = isinstance(topic, str) and (topic == reply_topic or topic.startswith(reply_topic + "/"))
    if not inside or "+" in topic or "#" in topic or len(topic) > 256:
        return Route(correlation_data=correlation, refused_topic=str(topic)[:256])
    return Route(topic=topic, correlation_data=correlation)
