"""Bridge tests: a real Mosquitto (the `broker` fixture of tests/conftest.py), the reference
cloud peer, bridges on their own outbox (helpers in tests/support/bridge.py)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_bridge import Bridge, CommandRouter
from edge.app import Controller, build_controller
from edge.clock import SystemClock
from edge.settings import Settings
from edge.storage import Database
from simulators.cloud import CloudSimulator
from tests.support.bridge import edge_settings
from tests.support.mosquitto import Broker


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


@pytest.fixture
def controller(tmp_path: Path, broker: Broker) -> Iterator[Controller]:
    """A whole simulated station (lock boards, cameras) whose bridge talks to the test's broker
    (so no private one starts)."""
    settings = edge_settings(tmp_path / "edge", broker)
    settings.simulate = True
    running = build_controller(settings)
    running.start()
    yield running
    running.stop()
