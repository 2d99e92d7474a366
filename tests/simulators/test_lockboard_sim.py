"""The lock-board simulator on its own: exact KR-CU16 bytes through a PTY, a TCP socket and its console."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import serial

from edge.drivers.lockboard.protocol import (
    BUS_QUERY,
    Cmd,
    encode_reply,
    status_request,
    unlock_board_request,
    unlock_request,
)
from simulators.lockboard import LockBoardSimulator, run_command

pytestmark = pytest.mark.timeout(20)

ALL_LATCHED_EMPTY = bytes.fromhex("02 00 35 FF FF 00 00 03 38")


@pytest.fixture
def line(sim: LockBoardSimulator) -> Iterator[serial.SerialBase]:
    port = serial.serial_for_url(sim.start_pty(), baudrate=19200, timeout=0.3)
    yield port
    port.close()


def ask(port: serial.SerialBase, frame: bytes, size: int = 9) -> bytes:
    port.reset_input_buffer()
    port.write(frame)
    return port.read(size)


def test_status_answer_is_the_spec_example(sim: LockBoardSimulator, line: serial.SerialBase) -> None:
    assert ask(line, bytes.fromhex("02 00 30 03 35")) == ALL_LATCHED_EMPTY
    assert [f.data for f in sim.frames_received] == [status_request(0)]


def test_reversed_polarity_reports_closed_as_zero() -> None:
    with LockBoardSimulator(boards=[0], closed_bit=0) as sim:
        with serial.serial_for_url(sim.start_pty(), timeout=0.3) as port:
            assert ask(port, status_request(0)) == encode_reply(Cmd.STATUS_REPLY, 0, 0x0000, 0)


def test_unlock_opens_the_latch_until_the_door_is_closed(sim: LockBoardSimulator,
                                                         line: serial.SerialBase) -> None:
    assert ask(line, unlock_request(1, 3)) == b""  # no reply on most firmware
    assert sim.is_open(1, 3) and not sim.is_open(1, 2)
    assert ask(line, status_request(1)) == encode_reply(Cmd.STATUS_REPLY, 1, 0xFFFF & ~(1 << 3), 0)

    sim.close_door(1, 3)
    assert not sim.is_open(1, 3)


def test_items_show_in_the_infrared_bytes(sim: LockBoardSimulator, line: serial.SerialBase) -> None:
    sim.set_item(0, 0, True)
    sim.set_item(0, 15, True)
    assert ask(line, status_request(0))[5:7] == bytes([0x01, 0x80])


def test_jammed_lock_stays_latched(sim: LockBoardSimulator, line: serial.SerialBase) -> None:
    sim.jam(0, 5)
    ask(line, unlock_request(0, 5))
    assert not sim.is_open(0, 5)


def test_offline_board_is_silent_and_ignores_unlocks(sim: LockBoardSimulator, line: serial.SerialBase) -> None:
    sim.set_offline(1)
    assert ask(line, status_request(1)) == b""
    ask(line, unlock_request(1, 0))
    assert not sim.is_open(1, 0)
    sim.set_offline(1, False)
    assert ask(line, status_request(1)) == encode_reply(Cmd.STATUS_REPLY, 1, 0xFFFF, 0)


def test_unknown_board_is_silent(line: serial.SerialBase) -> None:
    assert ask(line, status_request(9)) == b""


def test_forced_door_shows_open(sim: LockBoardSimulator) -> None:
    sim.open_door(1, 8)
    assert sim.is_open(1, 8)


def test_auto_close_shuts_the_door_after_its_time() -> None:
    with LockBoardSimulator(boards=[0], auto_close_s=0.3) as sim:
        with serial.serial_for_url(sim.start_pty(), timeout=0.3) as port:
            port.write(unlock_request(0, 2))
            assert ask(port, status_request(0)) == encode_reply(Cmd.STATUS_REPLY, 0, 0xFFFF & ~(1 << 2), 0)
            time.sleep(0.35)
            assert not sim.is_open(0, 2)
            assert ask(port, status_request(0)) == ALL_LATCHED_EMPTY


def test_garbage_goes_out_once_before_the_next_reply(sim: LockBoardSimulator, line: serial.SerialBase) -> None:
    sim.inject_garbage(b"\xfb\xfb")
    assert ask(line, status_request(0), 11) == b"\xfb\xfb" + ALL_LATCHED_EMPTY
    assert ask(line, status_request(0), 11) == ALL_LATCHED_EMPTY


def test_echo_unlock_answers_with_a_status_frame(sim: LockBoardSimulator, line: serial.SerialBase) -> None:
    sim.echo_unlock(True)
    assert ask(line, unlock_request(0, 0)) == encode_reply(Cmd.STATUS_REPLY, 0, 0xFFFE, 0)


def test_bus_query_is_answered_by_online_boards_in_order(sim: LockBoardSimulator, line: serial.SerialBase) -> None:
    sim.set_offline(0)
    assert ask(line, BUS_QUERY, 18) == encode_reply(Cmd.QUERY_REPLY, 1, 0xFFFF, 0)


def test_board_unlock_opens_every_free_lock(sim: LockBoardSimulator, line: serial.SerialBase) -> None:
    sim.jam(1, 4)
    ask(line, unlock_board_request(1))
    assert [lock for lock in range(16) if not sim.is_open(1, lock)] == [4]


def test_reply_delay_holds_the_answer(sim: LockBoardSimulator, line: serial.SerialBase) -> None:
    sim.set_reply_delay(0.5)
    assert ask(line, status_request(0)) == b""  # not within the 0.3 s read timeout
    line.timeout = 2.0  # then it comes: wait for it, not for a wall-clock guess (busy machines)
    assert line.read(9) == ALL_LATCHED_EMPTY


def test_frames_received_logs_exact_bytes_in_order_and_counts_stray_bytes(
    sim: LockBoardSimulator, line: serial.SerialBase
) -> None:
    line.write(b"\xfb" + status_request(0) + b"\x02\x00" + unlock_request(1, 2))
    line.read(9)
    sim.wait_idle()  # the unlock has no reply to wait for

    frames = sim.frames_received
    assert [f.data for f in frames] == [status_request(0), unlock_request(1, 2)]
    assert frames[0].at <= frames[1].at
    assert sim.stray_bytes == 3
    assert sim.frames_of(Cmd.UNLOCK) == [unlock_request(1, 2)]


def test_tcp_serves_the_same_bytes(sim: LockBoardSimulator) -> None:
    url = sim.start_tcp()
    host, port = url.removeprefix("socket://").split(":")
    with socket.create_connection((host, int(port)), timeout=1) as conn:
        conn.sendall(status_request(0))
        reply = b""
        while len(reply) < 9:
            reply += conn.recv(9 - len(reply))
    assert reply == ALL_LATCHED_EMPTY


def test_controls_refuse_unknown_boards_and_locks(sim: LockBoardSimulator) -> None:
    with pytest.raises(ValueError, match="no board 4"):
        sim.close_door(4, 0)
    with pytest.raises(ValueError, match="lock 16"):
        sim.set_item(0, 16, True)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("close x 1", "error: invalid literal"),
        ("jam 7 1", "error: no board 7"),
        ("item 0 1 maybe", "error: expected on or off"),
        ("garbage zz", "error:"),
        ("fly away", "error: cannot read 'fly away'"),
        ("close 1", "error: cannot read"),
    ],
)
def test_console_answers_bad_input_with_an_error_line(sim: LockBoardSimulator, command: str,
                                                      expected: str) -> None:
    assert run_command(sim, command).startswith(expected)


def test_console_commands_change_the_boards(sim: LockBoardSimulator) -> None:
    for command in ("open 0 3", "item 0 4 on", "jam 1 2", "offline 1"):
        assert run_command(sim, command) == "ok"
    assert run_command(sim, "status").splitlines() == [
        "board 0 online: open 3 items 4 jammed -",
        "board 1 offline: open - items - jammed 2",
    ]
    assert run_command(sim, "close 0 3") == "ok" and not sim.is_open(0, 3)


def test_runs_alone_prints_its_port_and_takes_commands() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.lockboard", "--boards", "0,1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/pts/")
        proc.stdin.write("item 1 3 on\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "ok"
        with serial.serial_for_url(path, timeout=1) as port:
            assert ask(port, status_request(1)) == encode_reply(Cmd.STATUS_REPLY, 1, 0xFFFF, 1 << 3)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
        proc.wait()


def test_tcp_option_prints_a_socket_url() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.lockboard", "--boards", "2", "--tcp", "0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("socket://127.0.0.1:")
        with serial.serial_for_url(url, timeout=1) as port:
            assert ask(port, status_request(2)) == encode_reply(Cmd.STATUS_REPLY, 2, 0xFFFF, 0)
        assert proc.poll() is None  # stdin closed, still serving
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
        proc.wait()


def test_bad_board_address_on_the_command_line_is_a_clear_error() -> None:
    done = subprocess.run([sys.executable, "-m", "simulators.lockboard", "--boards", "0,16"],
                          capture_output=True, text=True, timeout=10)
    assert done.returncode == 2
    assert "board 16 is outside 0-15" in done.stderr
    assert "Traceback" not in done.stderr


def test_one_simulator_serves_one_port(sim: LockBoardSimulator) -> None:
    sim.start_pty()
    with pytest.raises(RuntimeError, match="already serving"):
        sim.start_tcp()
