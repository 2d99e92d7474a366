"""The Kerong driver against the simulator: real bytes through a PTY with pyserial."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest

from edge.drivers.lockboard import KerongBus, Latch, LockState
from edge.drivers.lockboard.protocol import Cmd, encode_reply, status_request, unlock_request
from simulators.lockboard import LockBoardSimulator

BusFactory = Callable[..., KerongBus]
pytestmark = pytest.mark.timeout(20)

CLOSED_EMPTY = LockState(Latch.CLOSED, False)


@pytest.mark.parametrize("closed_bit", [1, 0])
@pytest.mark.parametrize("board", [0, 1])
def test_status_reads_latches_and_items_in_either_polarity(
    closed_bit: int, board: int, open_bus: BusFactory
) -> None:
    with LockBoardSimulator(boards=[0, 1], closed_bit=closed_bit) as sim:
        bus = open_bus(sim.start_pty(), closed_bit=closed_bit)
        sim.open_door(board, 2)
        sim.set_item(board, 9, True)

        status = bus.read_board(board)

    assert status.reachable and status.board == board and status.error is None
    assert status.locks[2] == LockState(Latch.OPEN, False)
    assert status.locks[9] == LockState(Latch.CLOSED, True)
    assert [i for i, lock in enumerate(status.locks) if lock != CLOSED_EMPTY] == [2, 9]
    assert sim.frames_of(Cmd.STATUS) == [status_request(board)]


def test_polarity_setting_decides_what_a_bit_means(sim: LockBoardSimulator, sim_path: str,
                                                   open_bus: BusFactory) -> None:
    # The simulator reports closed as 1; a bus set to the other polarity reads it reversed.
    reversed_bus = open_bus(sim_path, closed_bit=0)
    assert {lock.latch for lock in reversed_bus.read_board(0).locks} == {Latch.OPEN}


def test_unlock_is_confirmed_by_status_without_a_retry(sim: LockBoardSimulator, bus: KerongBus) -> None:
    result = bus.unlock(1, 3)

    assert result.opened and result.attempts == 1 and result.error is None
    assert result.state.latch is Latch.OPEN
    assert sim.is_open(1, 3)
    assert [f.data for f in sim.frames_received] == [unlock_request(1, 3), status_request(1)]


def test_jammed_lock_is_retried_exactly_once_and_reported_closed(sim: LockBoardSimulator,
                                                                  bus: KerongBus) -> None:
    sim.jam(0, 5)

    result = bus.unlock(0, 5)

    assert not result.opened and result.attempts == 2
    assert result.state.latch is Latch.CLOSED
    assert "still closed after 2 unlock pulses" in (result.error or "")
    assert sim.frames_of(Cmd.UNLOCK) == [unlock_request(0, 5)] * 2
    # each pulse was followed by a status read before anything else was decided
    cmds = [f.request.cmd for f in sim.frames_received]
    assert cmds[0] == Cmd.UNLOCK and cmds[1] == Cmd.STATUS
    assert cmds[-1] == Cmd.STATUS


def test_a_latch_left_closed_by_the_first_pulse_opens_on_the_one_resend(
    sim: LockBoardSimulator, sim_path: str, open_bus: BusFactory
) -> None:
    bus = open_bus(sim_path, unlock_gap_s=0.5)
    sim.jam(0, 6)
    # frees long before the re-send, which waits for the unlock gap
    unjam = threading.Timer(0.02, sim.jam, args=(0, 6, False))
    unjam.start()

    result = bus.unlock(0, 6)
    unjam.join()

    assert result.opened and result.attempts == 2 and result.state.latch is Latch.OPEN
    assert sim.frames_of(Cmd.UNLOCK) == [unlock_request(0, 6)] * 2
    assert sim.is_open(0, 6)


def test_offline_board_reads_unreachable_and_unknown(sim: LockBoardSimulator, sim_path: str,
                                                     open_bus: BusFactory) -> None:
    bus = open_bus(sim_path, reply_timeout_s=0.05)
    sim.set_offline(1)

    status = bus.read_board(1)
    sim.wait_idle()

    assert not status.reachable
    assert {lock.latch for lock in status.locks} == {Latch.UNKNOWN}
    assert {lock.item for lock in status.locks} == {None}
    assert "board 1 unreachable: no reply" in (status.error or "")
    assert sim.frames_of(Cmd.STATUS) == [status_request(1)] * 3  # three attempts


def test_unlock_on_an_offline_board_is_not_confirmed_nor_repeated(sim: LockBoardSimulator, sim_path: str,
                                                                  open_bus: BusFactory) -> None:
    bus = open_bus(sim_path, reply_timeout_s=0.05)
    sim.set_offline(0)

    result = bus.unlock(0, 1)
    sim.wait_idle()

    assert not result.opened and result.attempts == 1
    assert result.state.latch is Latch.UNKNOWN
    assert "unreachable" in (result.error or "")
    assert sim.frames_of(Cmd.UNLOCK) == [unlock_request(0, 1)]
    assert not sim.is_open(0, 1)


def test_garbage_before_a_reply_is_skipped(sim: LockBoardSimulator, bus: KerongBus) -> None:
    sim.open_door(0, 0)
    corrupt = bytearray(encode_reply(Cmd.STATUS_REPLY, 0, 0, 0))
    corrupt[-1] ^= 0xFF
    sim.inject_garbage(b"\xfb\x02\xfb" + bytes(corrupt) + b"\xfb")

    status = bus.read_board(0)

    assert status.reachable and status.locks[0].latch is Latch.OPEN
    assert status.locks[1].latch is Latch.CLOSED
    assert len(sim.frames_of(Cmd.STATUS)) == 1  # recovered within the same attempt


def test_a_reply_from_another_board_is_not_taken(sim: LockBoardSimulator, bus: KerongBus) -> None:
    sim.inject_garbage(encode_reply(Cmd.STATUS_REPLY, 1, latches=0, items=0xFFFF))

    status = bus.read_board(0)

    assert status.board == 0 and status.locks[0] == CLOSED_EMPTY


def test_slow_reply_beyond_the_timeout_is_retried(sim: LockBoardSimulator, sim_path: str,
                                                  open_bus: BusFactory) -> None:
    # The first answer lands in the middle of the second attempt's window, a quarter of a
    # second from either edge, so a loaded machine's scheduling delays do not move it out.
    bus = open_bus(sim_path, reply_timeout_s=0.5)
    sim.set_reply_delay(0.75)

    status = bus.read_board(0)
    sim.wait_idle()  # it was still sleeping before it read the second request

    assert status.reachable
    assert sim.frames_of(Cmd.STATUS) == [status_request(0)] * 2


def test_echo_after_unlock_is_drained_and_status_still_read(sim: LockBoardSimulator, sim_path: str,
                                                            open_bus: BusFactory,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    bus = open_bus(sim_path, echo_window_s=0.2)  # room for a busy machine to echo in time
    sim.echo_unlock(True)
    caplog.set_level(logging.DEBUG, logger="edge.drivers.lockboard")

    result = bus.unlock(0, 0)
    after = bus.read_board(1)

    assert result.opened and result.attempts == 1
    assert [f.data for f in sim.frames_received] == [unlock_request(0, 0), status_request(0), status_request(1)]
    assert after.board == 1 and after.locks[0] == CLOSED_EMPTY
    assert "drained after unlock: 1 frame(s)" in caplog.text
    assert "tx 02 00 31 03 36" in caplog.text  # hex frames logged at DEBUG


def test_echo_does_not_stand_in_for_confirmation(sim: LockBoardSimulator, bus: KerongBus) -> None:
    sim.echo_unlock(True)
    sim.jam(1, 7)

    result = bus.unlock(1, 7)

    assert not result.opened and result.attempts == 2
    assert len(sim.frames_of(Cmd.UNLOCK)) == 2


def test_echoing_firmware_without_an_echo_window_still_opens_with_one_pulse(
        sim: LockBoardSimulator, sim_path: str, open_bus: BusFactory) -> None:
    sim.echo_unlock(True)
    bus = open_bus(sim_path, echo_window_s=0.0)

    result = bus.unlock(0, 3)

    assert result.opened and result.attempts == 1
    assert len(sim.frames_of(Cmd.UNLOCK)) == 1


def test_scan_finds_only_online_boards(open_bus: BusFactory) -> None:
    with LockBoardSimulator(boards=[0, 1, 2, 5]) as sim:
        bus = open_bus(sim.start_pty(), boards=[0, 1, 2, 5])
        sim.set_offline(1)

        found = bus.scan()

    assert found == [0, 2, 5]
    assert [f.data for f in sim.frames_received] == [bytes.fromhex("02 F0 32 03 27")]


def test_unlock_board_opens_every_lock_and_reports_each(sim: LockBoardSimulator, bus: KerongBus) -> None:
    sim.jam(1, 4)

    results = bus.unlock_board(1)

    assert [r.lock for r in results] == list(range(16))
    assert [r.lock for r in results if not r.opened] == [4]
    assert "still closed" in (results[4].error or "")
    assert sim.frames_of(Cmd.UNLOCK_BOARD) == [bytes.fromhex("02 10 33 03 48")]
    assert sim.frames_of(Cmd.UNLOCK) == []


def test_unlock_gap_separates_pulses_on_the_bus(sim: LockBoardSimulator, sim_path: str,
                                                open_bus: BusFactory) -> None:
    gap = 0.15
    # With an echo, the driver's gap starts only after the simulator has taken in the first
    # pulse, so a late-scheduled simulator thread cannot shrink the gap it measures.
    sim.echo_unlock(True)
    bus = open_bus(sim_path, unlock_gap_s=gap, echo_window_s=0.2)

    assert bus.unlock(0, 0).opened and bus.unlock(1, 0).opened

    first, second = (f.at for f in sim.frames_received if f.request.cmd == Cmd.UNLOCK)
    assert second - first >= gap


def test_status_reads_go_ahead_of_an_unlock_waiting_for_its_gap(sim: LockBoardSimulator, sim_path: str,
                                                                open_bus: BusFactory) -> None:
    bus = open_bus(sim_path, unlock_gap_s=1.0)
    assert bus.unlock(0, 0).opened
    waiting = threading.Thread(target=bus.unlock, args=(0, 1))
    waiting.start()
    waiting.join(0.1)  # let it queue behind the gap

    assert bus.read_board(1).reachable
    waiting.join()

    order = [(f.request.cmd, f.request.board) for f in sim.frames_received]
    assert order.index((Cmd.STATUS, 1)) < order.index((Cmd.UNLOCK, 0), 1)
    assert sim.is_open(0, 1)


def test_concurrent_callers_are_serialised(sim: LockBoardSimulator, bus: KerongBus) -> None:
    reads_per_thread, threads = 15, 4
    results: dict[int, list[object]] = {}

    def worker(n: int) -> None:
        board = n % 2
        mine = [bus.read_board(board) for _ in range(reads_per_thread)]
        mine.append(bus.unlock(board, n))
        results[n] = mine

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()

    for n, mine in results.items():
        *reads, unlock = mine
        assert all(r.reachable and r.board == n % 2 for r in reads)
        assert unlock.opened and unlock.attempts == 1
    assert len(results) == threads
    assert sim.stray_bytes == 0  # no torn or interleaved request reached the bus
    assert len(sim.frames_of(Cmd.UNLOCK)) == threads
    assert len(sim.frames_of(Cmd.STATUS)) == threads * (reads_per_thread + 1)


def test_bad_arguments_get_clear_errors(bus: KerongBus) -> None:
    with pytest.raises(ValueError, match="board 7 is not on this bus"):
        bus.read_board(7)
    with pytest.raises(ValueError, match="lock 16"):
        bus.unlock(0, 16)
    with pytest.raises(ValueError, match="board 3 is not on this bus"):
        bus.unlock_board(3)


def test_board_count_means_boards_from_zero(sim_path: str, open_bus: BusFactory) -> None:
    assert open_bus(sim_path, boards=3).boards == (0, 1, 2)


def test_invalid_polarity_is_refused(sim_path: str, open_bus: BusFactory) -> None:
    with pytest.raises(ValueError, match="closed_bit"):
        open_bus(sim_path, closed_bit=2)
