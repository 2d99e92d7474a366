"""`fleet simulate`: lightweight stations speaking the contract, for tests, demos and the
ingest benchmark.

Each station has its own site/device ids, topics and seq, keeps what it published (as the
edge's outbox keeps published rows) and answers `outbox.replay` by publishing that range
again with the same message_ids. Many stations share a few MQTT connections, so a
thousand fit on a small machine. Chaos, each with its own probability: duplicates (a
message sent twice), out-of-order (two messages swapped), missing seqs (a message held
back until the platform asks for it), and outages (a station goes offline, queues, and
comes back with a backlog).
"""
from __future__ import annotations

import json
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from fleet.mqtt import connect_properties, iso, new_client
from fleet.settings import FleetMqttSettings

REPLAY_TOPIC = "edge/v1/+/+/cmd/outbox.replay"
EVENT_TYPES = ("door.opened", "door.closed", "parcel.deposited", "parcel.collected", "signin.recorded")


@dataclass
class Chaos:
    duplicate: float = 0.0
    reorder: float = 0.0
    missing: float = 0.0
    outage: float = 0.0  # per event: the station goes offline for the next `outage_events`
    outage_events: int = 20


@dataclass
class SimStation:
    site_id: str
    device_id: str
    seq: int = 0
    published: dict[int, tuple[str, bytes]] = field(default_factory=dict)  # the kept outbox
    replays_done: set[str] = field(default_factory=set)  # transaction_ids run (at most once)

    @property
    def prefix(self) -> str:
        return f"edge/v1/{self.site_id}/{self.device_id}"

    def next_event(self, type_: str, data: dict, now: datetime | None = None) -> tuple[str, bytes]:
        self.seq += 1
        body = {"message_id": str(uuid.uuid4()), "seq": self.seq, "type": type_,
                "ts": iso(now or datetime.now(timezone.utc)), "site_id": self.site_id,
                "device_id": self.device_id, "data": data}
        message = (f"{self.prefix}/evt/{type_}", json.dumps(body, separators=(",", ":")).encode())
        self.published[self.seq] = message
        return message

    def status(self, online: bool, now: datetime | None = None) -> tuple[str, bytes]:
        stamp = iso(now or datetime.now(timezone.utc))
        body = {"message_id": str(uuid.uuid4()), "type": "status", "ts": stamp, "site_id": self.site_id,
                "device_id": self.device_id, "data": {"online": online, "version": "sim", "started_at": stamp}}
        return f"{self.prefix}/status", json.dumps(body).encode()

    def replay(self, command: dict) -> list[tuple[str, bytes]]:
        """The messages an `outbox.replay` command asks for (none if it ran already or expired)."""
        transaction_id = command["transaction_id"]
        expires = datetime.fromisoformat(command["expires_at"])
        if transaction_id in self.replays_done or expires < datetime.now(timezone.utc):
            return []
        self.replays_done.add(transaction_id)
        low, high = int(command["data"]["from_seq"]), int(command["data"]["to_seq"])
        return [self.published[s] for s in range(low, high + 1) if s in self.published]


class SimConnection:
    """One MQTT connection carrying several stations' topics."""

    def __init__(self, mqtt_settings: FleetMqttSettings, name: str, stations: list[SimStation]) -> None:
        self.stations = {(s.site_id, s.device_id): s for s in stations}
        self.client = new_client(mqtt_settings, name)
        self.client.max_inflight_messages_set(1000)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.ready = threading.Event()
        self.replayed = 0
        self._settings = mqtt_settings

    def start(self) -> None:
        self.client.connect(self._settings.host, self._settings.port, 30, clean_start=False,
                            properties=connect_properties(3600))
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, _u, _flags, reason_code, _p) -> None:  # noqa: ANN001
        if not reason_code.is_failure:
            client.subscribe([(REPLAY_TOPIC, SubscribeOptions(qos=1))])
            self.ready.set()

    def _on_message(self, client: mqtt.Client, _u, message: mqtt.MQTTMessage) -> None:  # noqa: ANN001
        parts = message.topic.split("/")
        station = self.stations.get((parts[2], parts[3]))
        if station is None:
            return
        try:
            command = json.loads(message.payload)
            again = station.replay(command)
        except (ValueError, KeyError, TypeError):
            return
        for topic, payload in again:
            client.publish(topic, payload, qos=1)
        self.replayed += len(again)

    def publish(self, message: tuple[str, bytes], *, retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self.client.publish(message[0], message[1], qos=1, retain=retain)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class SimulationReport:
    stations: int = 0
    events: int = 0  # distinct seqs created
    sent: int = 0  # messages published, duplicates included
    duplicates: int = 0
    reordered: int = 0
    withheld: int = 0  # missing until replayed
    outages: int = 0
    withheld_by_station: dict[tuple[str, str], list[int]] = field(default_factory=dict)


def make_stations(count: int, *, sites: int | None = None, prefix: str = "sim") -> list[SimStation]:
    sites = sites or max(1, count // 10)
    return [SimStation(site_id=f"{prefix}-site-{i % sites:04d}", device_id=f"kiosk-{i:05d}") for i in range(count)]


def burst(connections: list[SimConnection], events_per_station: int, *, chaos: Chaos | None = None,
          seed: int = 1, on_sent: Callable[[int], None] | None = None) -> SimulationReport:
    """Every station publishes `events_per_station` new events, interleaved across stations,
    with the chaos asked for; waits until the broker has acknowledged them all."""
    chaos = chaos or Chaos()
    rng = random.Random(seed)
    report = SimulationReport(stations=sum(len(c.stations) for c in connections))
    pending: list[mqtt.MQTTMessageInfo] = []
    offline: dict[tuple[str, str], int] = {}  # station -> events left in its outage
    backlog: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
    now = datetime.now(timezone.utc)
    for round_ in range(events_per_station):
        for connection in connections:
            held: tuple[str, bytes] | None = None
            for key, station in connection.stations.items():
                message = station.next_event(rng.choice(EVENT_TYPES), {"compartment": rng.randint(1, 32)},
                                             now + timedelta(milliseconds=round_))
                report.events += 1
                if key in offline:
                    backlog.setdefault(key, []).append(message)
                    offline[key] -= 1
                    if offline[key] == 0:
                        del offline[key]
                        pending.append(connection.publish(station.status(True), retain=True))
                        for queued in backlog.pop(key):
                            pending.append(connection.publish(queued))
                            report.sent += 1
                    continue
                if rng.random() < chaos.outage:
                    report.outages += 1
                    offline[key] = chaos.outage_events
                    pending.append(connection.publish(station.status(False), retain=True))
                    backlog.setdefault(key, []).append(message)
                    continue
                if rng.random() < chaos.missing:
                    report.withheld += 1
                    report.withheld_by_station.setdefault(key, []).append(station.seq)
                    continue
                if held is None and rng.random() < chaos.reorder:
                    held = message  # sent after the next station's message
                    report.reordered += 1
                    continue
                pending.append(connection.publish(message))
                report.sent += 1
                if held is not None:
                    pending.append(connection.publish(held))
                    report.sent += 1
                    held = None
                if rng.random() < chaos.duplicate:
                    pending.append(connection.publish(message))
                    report.sent += 1
                    report.duplicates += 1
            if held is not None:
                pending.append(connection.publish(held))
                report.sent += 1
            if on_sent:
                on_sent(report.sent)
        if len(pending) > 20_000:
            _wait_all(pending)
            pending = []
    for key, queued in backlog.items():  # outages still running at the end come back now
        connection = next(c for c in connections if key in c.stations)
        pending.append(connection.publish(connection.stations[key].status(True), retain=True))
        for message in queued:
            pending.append(connection.publish(message))
            report.sent += 1
    _wait_all(pending)
    return report


def _wait_all(pending: list[mqtt.MQTTMessageInfo]) -> None:
    for info in pending:
        info.wait_for_publish(60)


def connect_fleet(mqtt_settings: FleetMqttSettings, stations: list[SimStation], connections: int,
                  *, name: str = "fleet-sim") -> list[SimConnection]:
    groups = [stations[i::connections] for i in range(connections)]
    links = [SimConnection(mqtt_settings, f"{name}-{i}", group) for i, group in enumerate(groups) if group]
    for link in links:
        link.start()
    for link in links:
        if not link.ready.wait(30):
            raise RuntimeError("simulated stations could not reach the broker")
    _wait_all([link.publish(station.status(True), retain=True)  # as an edge does on connect
               for link in links for station in link.stations.values()])
    return links


def outage_backlog(connections: list[SimConnection], outage_s: float, interval_s: float, *,
                   end: datetime | None = None, seed: int = 1) -> list[tuple[SimConnection, tuple[str, bytes]]]:
    """What the stations' outboxes hold after `outage_s` seconds without the broker, each
    station producing one event every `interval_s` (its own phase) with the station time it
    happened: ordered by that time, as all stations flush together on reconnect. Nothing is
    published here; `publish_all` sends it."""
    rng = random.Random(seed)
    end = end or datetime.now(timezone.utc)
    start = end - timedelta(seconds=outage_s)
    timed: list[tuple[float, int, SimConnection, SimStation]] = []
    order = 0
    for connection in connections:
        for station in connection.stations.values():
            offset = rng.uniform(0, interval_s)
            while offset < outage_s:
                timed.append((offset, order, connection, station))
                order += 1
                offset += interval_s
    timed.sort(key=lambda row: (row[0], row[1]))
    return [(connection, station.next_event(rng.choice(EVENT_TYPES), {"compartment": rng.randint(1, 32)},
                                            start + timedelta(seconds=offset)))
            for offset, _, connection, station in timed]


def publish_all(messages: list[tuple[SimConnection, tuple[str, bytes]]]) -> list[mqtt.MQTTMessageInfo]:
    """Hand every message to its connection at once (paho queues them in order); returns the
    publishes to wait on."""
    return [connection.publish(message) for connection, message in messages]


class SteadyStations(threading.Thread):
    """Every station produces one event every `interval_s` (its own phase) until `stop()`,
    from `start` (wall clock) on. An event's station time is the moment it is due; one due
    before the thread got to it is made at once with that time (it waited in the station's
    outbox). On a connection still flushing a backlog a new event queues behind it, as in
    the edge's outbox (first in, first out per station)."""

    def __init__(self, connections: list[SimConnection], interval_s: float, *,
                 start: datetime | None = None, seed: int = 2) -> None:
        super().__init__(name="fleet-sim-steady", daemon=True)
        self._rng = random.Random(seed)
        self._interval_s = interval_s
        self._start = start or datetime.now(timezone.utc)
        self._stations = [(c, s) for c in connections for s in c.stations.values()]
        self._stopped = threading.Event()
        self.made = 0
        self._pending: list[mqtt.MQTTMessageInfo] = []

    def run(self) -> None:
        import heapq

        due = [(self._rng.uniform(0, self._interval_s), i) for i in range(len(self._stations))]
        heapq.heapify(due)
        while not self._stopped.is_set():
            offset, index = due[0]
            at = self._start + timedelta(seconds=offset)
            if self._stopped.wait(max(0.0, (at - datetime.now(timezone.utc)).total_seconds())):
                break
            connection, station = self._stations[index]
            message = station.next_event(self._rng.choice(EVENT_TYPES), {"compartment": self._rng.randint(1, 32)}, at)
            self._pending.append(connection.publish(message))
            self.made += 1
            heapq.heapreplace(due, (offset + self._interval_s, index))

    def stop(self) -> None:
        """Stop producing; returns once the broker has every event made."""
        self._stopped.set()
        self.join(30)
        _wait_all(self._pending)
