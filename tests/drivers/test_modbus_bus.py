"""The Modbus RTU driver against the Modbus lock-board simulator: real bytes through a PTY
with pyserial, both ends framed by pymodbus."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from edge.drivers.lockboard import BusError, Latch, LockState, ModbusBus, ModbusSettings, open_lockboard_bus
from simulators.modbus_lockboard import ModbusLockBoardSimulator

pytestmark = pytest.mark.timeout(30)

READ_INPUTS, WRITE_COIL = 0x02, 0x05
# Textbook frames (unit 1): read 32 discrete inputs from 0; coil 0 on; coil 0 off.
STATUS_UNIT1 = bytes.fromhex("01 02 00 00 00 20 79 d2")
COIL0_ON_UNIT1 = bytes.fromhex("01 05 00 00 ff 00 8c 3a")
COIL0_OFF_UNIT1 = bytes.fromhex("01 05 00 00 00 00 cd ca")
CLOSED_EMPTY = LockState(Latch.CLOSED, False)
# Short windows keep the suite quick; the reply timeout stays roomy for a busy machine.
FAST: dict[str, Any] = dict(reply_timeout_s=0.3, confirm_window_s=0.05, confirm_poll_s=0.01,
                            pulse_s=0.02, unlock_gap_s=0.0)

BusFactory = Callable[..., ModbusBus]


@pytest.fixture
def msim() -> Iterator[ModbusLockBoardSimulator]:
    simulator = ModbusLockBoardSimulator(boards=[0, 1])
    simulator.start_pty()
    yield simulator
    simulator.stop()


@pytest.fixture
def bus_options() -> dict[str, Any]:
    """This module's buses speak Modbus (tests/drivers/conftest.py opens them)."""
    return {"protocol": "modbus", **FAST}


@pytest.fixture
def bus(msim: ModbusLockBoardSimulator, open_bus: BusFactory) -> ModbusBus:
    return open_bus(msim.url)


def function_codes(sim: ModbusLockBoardSimulator) -> list[int]:
    return [f.data[1] for f in sim.frames_received]


@pytest.mark.parametrize("closed_bit", [1, 0])
def test_status_reads_latches_and_items_with_one_request(closed_bit: int, open_bus: BusFactory) -> None:
    with ModbusLockBoardSimulator(boards=[0, 1], closed_bit=closed_bit) as sim:
        bus = open_bus(sim.start_pty(), closed_bit=closed_bit)
        sim.open_door(0, 2)
        sim.set_item(0, 9, True)

        status = bus.read_board(0)

    assert status.reachable and status.board == 0 and status.error is None
    assert status.locks[2] == LockState(Latch.OPEN, False)
    assert status.locks[9] == LockState(Latch.CLOSED, True)
    assert [i for i, lock in enumerate(status.locks) if lock != CLOSED_EMPTY] == [2, 9]
    assert [f.data for f in sim.frames_received] == [STATUS_UNIT1]


def test_boards_without_item_sensors_read_16_inputs_and_items_unknown(
    open_bus: BusFactory
) -> None:
    with ModbusLockBoardSimulator(boards=[0], item_sensors=False) as sim:
        bus = open_bus(sim.start_pty(), boards=[0], item_sensors=False)
        status = bus.read_board(0)

    assert status.reachable and {lock.item for lock in status.locks} == {None}
    assert sim.frames_received[0].data[:6] == bytes.fromhex("01 02 00 00 00 10")


def test_unlock_is_coil_on_status_then_coil_off(msim: ModbusLockBoardSimulator, bus: ModbusBus) -> None:
    result = bus.unlock(0, 0)

    assert result.opened and result.attempts == 1 and result.error is None
    assert result.state.latch is Latch.OPEN
    assert msim.is_open(0, 0) and not msim.coil_on(0, 0)
    frames = msim.frames_received
    assert [f.data for f in frames] == [COIL0_ON_UNIT1, STATUS_UNIT1, COIL0_OFF_UNIT1]
    # the solenoid had its whole pulse: off no sooner than pulse_s after on
    # (the simulator stamps a frame when its reader thread takes it, which on a busy machine
    # can be a few ms after the driver wrote it: the coil-on stamp may run late, never early)
    assert frames[2].at - frames[0].at >= FAST["pulse_s"] - 0.005
    # RTU frames end with 3.5 characters of silence: the next request waits at least that
    silence = ModbusSettings(url="-", boards=(0,)).silent_interval_s
    assert frames[1].at - frames[0].at >= silence


def test_units_map_boards_to_their_slave_addresses(open_bus: BusFactory) -> None:
    with ModbusLockBoardSimulator(boards=[0, 1], units=[7, 12]) as sim:
        bus = open_bus(sim.start_pty(), units=[7, 12])
        result = bus.unlock(1, 4)
        assert result.opened and sim.is_open(1, 4) and not sim.is_open(0, 4)

    assert {f.data[0] for f in sim.frames_received} == {12}
    assert sim.frames_of(WRITE_COIL)[0][2:6] == bytes.fromhex("00 04 ff 00")


def test_jammed_lock_is_pulsed_exactly_twice_and_reported_closed(msim: ModbusLockBoardSimulator,
                                                                 bus: ModbusBus) -> None:
    msim.jam(1, 5)

    result = bus.unlock(1, 5)

    assert not result.opened and result.attempts == 2
    assert result.state.latch is Latch.CLOSED
    assert "still closed after 2 unlock pulses" in (result.error or "")
    coil_writes = [f[4] for f in msim.frames_of(WRITE_COIL)]
    assert coil_writes == [0xFF, 0x00, 0xFF, 0x00]  # on, off, on, off: never left powered
    assert not msim.coil_on(1, 5)
    codes = function_codes(msim)
    assert codes[0] == WRITE_COIL and codes[1] == READ_INPUTS and codes[-1] == READ_INPUTS


def test_a_latch_freed_after_the_first_pulse_opens_on_the_one_resend(
    msim: ModbusLockBoardSimulator, open_bus: BusFactory
) -> None:
    bus = open_bus(msim.url)
    msim.jam(0, 6)
    first_off_seen = threading.Event()
    original = msim._set_coil

    def set_coil(lock: Any, on: bool) -> None:  # free the latch as the first pulse ends
        original(lock, on)
        if not on and not first_off_seen.is_set():
            lock.jammed = False
            first_off_seen.set()

    msim._set_coil = set_coil  # type: ignore[method-assign]

    result = bus.unlock(0, 6)

    assert result.opened and result.attempts == 2 and msim.is_open(0, 6)
    assert [f[4] for f in msim.frames_of(WRITE_COIL)] == [0xFF, 0x00, 0xFF, 0x00]


def test_silent_board_reads_unreachable_and_unknown(msim: ModbusLockBoardSimulator, open_bus: BusFactory) -> None:
    bus = open_bus(msim.url, reply_timeout_s=0.05)
    msim.set_offline(1)

    status = bus.read_board(1)
    msim.wait_idle()

    assert not status.reachable
    assert {lock.latch for lock in status.locks} == {Latch.UNKNOWN}
    assert {lock.item for lock in status.locks} == {None}
    assert "board 1 (Modbus unit 2) unreachable: no reply" in (status.error or "")
    assert function_codes(msim) == [READ_INPUTS] * 3  # three attempts
    assert bus.counters.timeouts == 3


def test_unlock_on_a_silent_board_is_not_repeated_but_the_coil_is_switched_off(
    msim: ModbusLockBoardSimulator, open_bus: BusFactory
) -> None:
    bus = open_bus(msim.url, reply_timeout_s=0.05)
    msim.set_offline(0)

    result = bus.unlock(0, 1)
    msim.wait_idle()

    assert not result.opened and result.attempts == 1
    assert result.state.latch is Latch.UNKNOWN and "unreachable" in (result.error or "")
    coil_writes = [f[4] for f in msim.frames_of(WRITE_COIL)]
    assert coil_writes.count(0xFF) == 1  # one pulse, never a second
    assert coil_writes[1:] == [0x00] * 3  # coil off tried until acknowledged, 3 attempts
    assert not msim.is_open(0, 1)


def test_crc_errors_on_the_line_are_survived_and_counted(msim: ModbusLockBoardSimulator, bus: ModbusBus) -> None:
    msim.open_door(0, 3)
    msim.corrupt_replies(2)

    status = bus.read_board(0)

    assert status.reachable and status.locks[3].latch is Latch.OPEN
    assert function_codes(msim) == [READ_INPUTS] * 3  # two corrupt replies, then a good one
    assert bus.counters.crc_errors == 2 and bus.counters.replies == 1


def test_a_board_whose_every_reply_is_corrupt_is_unreachable_with_the_cause(
    msim: ModbusLockBoardSimulator, bus: ModbusBus
) -> None:
    msim.corrupt_replies(3)

    status = bus.read_board(1)

    assert not status.reachable and "CRC error" in (status.error or "")
    assert {lock.latch for lock in status.locks} == {Latch.UNKNOWN}
    assert bus.read_board(1).reachable  # the line is clean again


def test_an_unlock_survives_crc_errors_on_its_status_reads(msim: ModbusLockBoardSimulator, bus: ModbusBus) -> None:
    msim.corrupt_replies(1)  # the coil-on acknowledgement is lost to noise

    result = bus.unlock(0, 8)

    assert result.opened and result.attempts == 1 and msim.is_open(0, 8)
    assert not msim.coil_on(0, 8)
    assert bus.counters.crc_errors == 1


@pytest.mark.parametrize("garbage", [
    bytes.fromhex("ff 00 fe"),  # line noise
    bytes.fromhex("01 02 04 ff"),  # looks like the start of our own reply
    bytes.fromhex("02 02 04 00 00 00 00 00 00"),  # another unit's frame
])
def test_garbage_before_a_reply_is_skipped_and_counted(msim: ModbusLockBoardSimulator, bus: ModbusBus,
                                                       garbage: bytes) -> None:
    msim.set_item(0, 0, True)
    msim.inject_garbage(garbage)

    status = bus.read_board(0)

    assert status.reachable and status.locks[0] == LockState(Latch.CLOSED, True)
    assert function_codes(msim) == [READ_INPUTS]  # found in the first reply, no retry
    assert bus.counters.stray_bytes == len(garbage)


def test_slow_replies_within_the_timeout_are_read(msim: ModbusLockBoardSimulator, open_bus: BusFactory) -> None:
    bus = open_bus(msim.url, reply_timeout_s=1.0)
    msim.set_reply_delay(0.05)

    result = bus.unlock(1, 2)

    assert result.opened and result.attempts == 1 and not msim.coil_on(1, 2)


def test_replies_slower_than_the_timeout_make_the_board_unreachable_then_it_recovers(
    msim: ModbusLockBoardSimulator, open_bus: BusFactory
) -> None:
    bus = open_bus(msim.url, reply_timeout_s=0.05)
    msim.set_reply_delay(0.3)

    slow = bus.read_board(0)
    msim.set_reply_delay(0.0)
    msim.open_door(0, 11)
    msim.wait_idle()

    assert not slow.reachable and "no reply within 50 ms" in (slow.error or "")
    fresh = bus.read_board(0)  # late replies to the slow reads must not pass for this one
    assert fresh.reachable and fresh.locks[11].latch is Latch.OPEN


def test_a_modbus_exception_is_reported_at_once_not_retried(msim: ModbusLockBoardSimulator,
                                                            open_bus: BusFactory) -> None:
    bus = open_bus(msim.url, input_base=100)  # the board has no inputs there

    status = bus.read_board(0)

    assert not status.reachable and "Modbus exception 2 (illegal data address)" in (status.error or "")
    assert function_codes(msim) == [READ_INPUTS]
    assert bus.counters.exceptions == 1


def test_scan_lists_the_boards_that_answer(msim: ModbusLockBoardSimulator, open_bus: BusFactory) -> None:
    bus = open_bus(msim.url, reply_timeout_s=0.1)
    assert bus.scan() == [0, 1]
    msim.set_offline(0)
    assert bus.scan() == [1]


def test_unlock_board_opens_every_lock_one_after_another(msim: ModbusLockBoardSimulator, bus: ModbusBus) -> None:
    msim.jam(1, 15)

    results = bus.unlock_board(1)

    assert [r.opened for r in results] == [True] * 15 + [False]
    assert all(msim.is_open(1, lock) for lock in range(15))
    assert not any(msim.coil_on(1, lock) for lock in range(16))
    ons = [f for f in msim.frames_of(WRITE_COIL) if f[4] == 0xFF]
    assert [f[3] for f in ons] == list(range(16)) + [15]  # lock 15 jammed: its one re-pulse


def test_concurrent_callers_never_power_two_coils_at_once(msim: ModbusLockBoardSimulator, bus: ModbusBus) -> None:
    threads = [threading.Thread(target=bus.unlock, args=(b, lock)) for b in (0, 1) for lock in (0, 1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(msim.is_open(b, lock) for b in (0, 1) for lock in (0, 1, 2))
    powered = 0
    for frame in msim.frames_of(WRITE_COIL):
        powered += 1 if frame[4] == 0xFF else -1
        assert 0 <= powered <= 1


def test_a_vanished_port_raises_bus_error_and_the_next_call_reopens(open_bus: BusFactory) -> None:
    sim = ModbusLockBoardSimulator(boards=[0])
    url = sim.start_pty()
    bus = open_bus(url, boards=[0])
    assert bus.read_board(0).reachable
    sim.stop()

    with pytest.raises(BusError):
        bus.read_board(0)


def test_bad_settings_get_clear_errors(msim: ModbusLockBoardSimulator, bus: ModbusBus) -> None:
    with pytest.raises(ValueError, match="board 3 is not on this bus"):
        bus.read_board(3)
    with pytest.raises(ValueError, match="lock 16"):
        bus.unlock(0, 16)
    with pytest.raises(ValueError, match="unit ids"):
        open_lockboard_bus(msim.url, boards=[0, 1], protocol="modbus", units=[1])
    with pytest.raises(ValueError, match="unit ids must be distinct"):
        open_lockboard_bus(msim.url, boards=[0, 1], protocol="modbus", units=[3, 3])
    with pytest.raises(ValueError, match="kerong or modbus"):
        open_lockboard_bus(msim.url, boards=[0], protocol="canbus")
