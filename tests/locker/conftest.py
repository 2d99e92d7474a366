"""Locker tests run the real controller wiring (build_controller, Flask app, Kerong driver)
against the lock-board simulator on a pseudo-terminal (tests/support/station.py)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from edge.app import Controller
from edge.clock import FakeClock
from simulators.lockboard import LockBoardSimulator
from tests.support.cli import serving
from tests.support.station import Station, courier_login, running_station


@pytest.fixture
def sim(sim: LockBoardSimulator, locker_overrides: dict[str, Any]) -> Iterator[LockBoardSimulator]:
    """The shared simulator (tests/conftest.py), serving on a PTY for the locker's tests; a
    module whose locker_overrides choose protocol "modbus" gets the Modbus bus simulator."""
    if locker_overrides.get("protocol") == "modbus":
        from simulators.modbus_lockboard import simulator_for

        sim = simulator_for([0, 1], protocol="modbus", units=locker_overrides.get("modbus_units"))
        sim.start_pty()
        yield sim
        sim.stop()
        return
    sim.start_pty()
    yield sim


@pytest.fixture
def locker_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def station_overrides() -> dict[str, Any]:
    """Other settings sections a module needs, e.g. {"site": {...}}."""
    return {}


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def station(tmp_path: Path, sim: LockBoardSimulator, fake_clock: FakeClock,
            locker_overrides: dict[str, Any], station_overrides: dict[str, Any]) -> Iterator[Station]:
    with running_station(tmp_path / "data", sim, clock=fake_clock, locker=locker_overrides,
                         **station_overrides) as running:
        yield running


@pytest.fixture
def controller(station: Station) -> Controller:
    return station.controller


@pytest.fixture
def client(station: Station) -> FlaskClient:
    return station.client


@pytest.fixture
def courier(client: FlaskClient) -> dict[str, str]:
    return courier_login(client)


@pytest.fixture
def env(tmp_path: Path, sim: LockBoardSimulator) -> dict[str, str]:
    """`edge diag`'s environment for this station's data folder and bus."""
    return {"EDGE_DATA_DIR": str(tmp_path / "data"), "EDGE_LOCKER__SERIAL_URL": sim.url,
            "EDGE_LOCKER__BOARDS": "0,1",
            "EDGE_LOCKER__REPLY_TIMEOUT_S": "0.5"}  # a slow reply under load is silence, not a jam


@pytest.fixture
def served(controller: Controller, env: dict[str, str]) -> Iterator[dict[str, str]]:
    """`edge diag`'s environment with the running controller's local API to talk to."""
    with serving(controller) as port:
        yield {**env, "EDGE_HTTP__PORT": str(port)}
