"""Lock-board fixtures: a simulator on a real PTY and buses opened on it with pyserial."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from edge.drivers.lockboard import KerongBus, open_lockboard_bus
from simulators.lockboard import LockBoardSimulator

# Quick confirm/scan windows keep the suite short; the reply timeout stays roomy so a busy
# CI machine does not turn an answered read into a retry.
FAST = dict(reply_timeout_s=0.2, confirm_window_s=0.05, confirm_poll_s=0.01, scan_window_s=0.15)

BusFactory = Callable[..., KerongBus]


@pytest.fixture
def sim_path(sim: LockBoardSimulator) -> str:
    return sim.start_pty()


@pytest.fixture
def bus_options() -> dict[str, Any]:
    """What a module's buses are opened with (a Modbus module gives its protocol and timing)."""
    return FAST


@pytest.fixture
def open_bus(bus_options: dict[str, Any]) -> Iterator[BusFactory]:
    """Open buses (closed after the test); keyword arguments override bus_options."""
    buses: list[KerongBus] = []

    def factory(url: str, boards: list[int] | int = 2, **options: Any) -> KerongBus:
        bus = open_lockboard_bus(url, boards=boards, **{**bus_options, **options})
        buses.append(bus)
        return bus

    yield factory
    for bus in buses:
        bus.close()


@pytest.fixture
def bus(sim_path: str, open_bus: BusFactory) -> KerongBus:
    return open_bus(sim_path)
