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
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def station(tmp_path: Path, sim: LockBoardSimulator, fake_clock: FakeClock,
            locker_overrides: dict[str, Any]) -> Iterator[Station]:
    with running_station(tmp_path / "data", sim, clock=fake_clock, locker=locker_overrides) as running:
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
