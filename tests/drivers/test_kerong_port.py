"""The Kerong driver's port: socket:// URLs, and failures that must not take the bus down."""
from __future__ import annotations

from collections.abc import Callable

import pytest

from edge.drivers.lockboard import BusError, KerongBus, Latch
from edge.drivers.lockboard.protocol import Cmd
from simulators.lockboard import LockBoardSimulator

BusFactory = Callable[..., KerongBus]
pytestmark = pytest.mark.timeout(20)


def test_socket_url_speaks_the_same_bytes(open_bus: BusFactory) -> None:
    with LockBoardSimulator(boards=[0, 1]) as sim:
        url = sim.start_tcp()
        assert url.startswith("socket://127.0.0.1:")
        bus = open_bus(url)

        result = bus.unlock(1, 15)
        status = bus.read_board(1)

    assert result.opened and status.locks[15].latch is Latch.OPEN
    assert sim.frames_of(Cmd.UNLOCK) == [bytes.fromhex("02 1F 31 03 55")]


def test_vanished_pty_gives_bus_errors_and_the_bus_stays_usable(open_bus: BusFactory) -> None:
    sim = LockBoardSimulator(boards=[0, 1])
    path = sim.start_pty()
    bus = open_bus(path)
    assert bus.read_board(0).reachable

    sim.stop()  # closes the PTY master: the adapter is unplugged

    with pytest.raises(BusError, match=f"port {path} failed"):
        bus.read_board(0)
    with pytest.raises(BusError, match=path):
        bus.unlock(0, 1)  # the owner thread survived and tried to reopen
    bus.close()
    with pytest.raises(BusError, match="closed"):
        bus.read_board(0)


def test_port_is_reopened_once_the_device_is_back(open_bus: BusFactory) -> None:
    first = LockBoardSimulator(boards=[0])
    url = first.start_tcp()
    bus = open_bus(url, boards=[0])
    assert bus.read_board(0).reachable
    first.stop()

    with pytest.raises(BusError):
        bus.read_board(0)
    with pytest.raises(BusError, match="cannot open"):
        bus.read_board(0)

    port = int(url.rsplit(":", 1)[1])
    with LockBoardSimulator(boards=[0]) as second:
        second.start_tcp(port=port)
        second.open_door(0, 4)
        status = bus.read_board(0)

    assert status.reachable and status.locks[4].latch is Latch.OPEN


def test_missing_device_is_retried_on_each_call_not_fatal(tmp_path, open_bus: BusFactory) -> None:
    missing = str(tmp_path / "ttyUSB-missing")
    bus = open_bus(missing)

    with pytest.raises(BusError, match="cannot open lock-board port"):
        bus.read_board(0)
    with pytest.raises(BusError, match="cannot open lock-board port"):
        bus.scan()


def test_url_the_port_can_never_accept_fails_at_open(open_bus: BusFactory) -> None:
    with pytest.raises(BusError, match="cannot open"):
        open_bus("nosuchscheme://somewhere")


def test_rs485_mode_on_a_port_without_it_fails_clearly(sim_path: str, open_bus: BusFactory) -> None:
    with pytest.raises(BusError, match="RS485"):
        open_bus(sim_path, rs485_rts=True)
