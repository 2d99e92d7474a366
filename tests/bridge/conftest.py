from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_bridge import Bridge, CommandRouter
from edge.clock import SystemClock
from edge.settings import Settings, load_settings
from edge.storage import Database, outbox, record_event
from simulators.cloud import CloudSimulator
from tests.support.mosquitto import Broker

SITE, DEVICE = "test-site", "kiosk-07"


def edge_settings(data_dir: Path, broker: Broker | None, **mqtt: object) -> Settings:
    mqtt_settings: dict[str, object] = {"site_id": SITE, "device_id": DEVICE, "reconnect_min_s": 0.05,
                                        "reconnect_max_s": 0.5}
    if broker is not None:
        mqtt_settings.update(host=broker.host, port=broker.port)
    mqtt_settings.update(mqtt)
    return load_settings(data_dir=data_dir, http={"port": 0}, mqtt=mqtt_settings)


def persistent_broker(workdir: Path, port: int | None = None) -> Broker:
    return Broker(workdir, port)  # persistence works as root too: see tests/support/mosquitto.py


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    running = persistent_broker(tmp_path / "broker").start()
    yield running
    running.stop()


@pytest.fixture
def mqtt_settings(tmp_path: Path, broker: Broker) -> Settings:
    return edge_settings(tmp_path / "edge", broker)


@pytest.fixture
def edge_db(mqtt_settings: Settings) -> Iterator[Database]:
    database = Database(mqtt_settings.database_path)
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def cloud(broker: Broker) -> Iterator[CloudSimulator]:
    simulator = CloudSimulator(broker.host, broker.port, decide=None, client_id="cloud-test",
                               session_expiry_s=3600).start()
    assert simulator.connected.wait(10), "the cloud simulator did not connect"
    yield simulator
    simulator.stop()


@pytest.fixture
def make_bridge(mqtt_settings: Settings, edge_db: Database) -> Iterator:
    started: list[Bridge] = []

    def make(router: CommandRouter | None = None, **kwargs: object) -> Bridge:
        clock = SystemClock()
        bridge = Bridge(mqtt_settings, edge_db, router or CommandRouter(edge_db, clock), clock=clock,
                        version="test", **kwargs)
        bridge.start()
        started.append(bridge)
        return bridge

    yield make
    for bridge in started:
        bridge.stop()


def add_events(db: Database, count: int, type_: str = "door.opened",
               priority: outbox.Priority = outbox.Priority.NORMAL) -> list[int]:
    seqs = []
    with db.write() as session:
        for n in range(count):
            seqs.append(record_event(session, type_, {"compartment": n % 32 + 1}, priority=priority).seq)
    return seqs


def device_log(cloud: CloudSimulator):
    return cloud.devices[(SITE, DEVICE)]
