"""The Modbus lock-board simulator on its own: Modbus RTU bytes written by hand through a PTY
with pyserial, its console, and `edge sim lockboard --protocol modbus`."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from edge.drivers.lockboard import Latch, open_lockboard_bus
from simulators.modbus_lockboard import ModbusLockBoardSimulator, run_modbus_command

pytestmark = pytest.mark.timeout(30)
ROOT = Path(__file__).resolve().parents[2]

# Unit 1: read 32 discrete inputs from 0; coil 0 on; coil 0 off; read 16 coils from 0.
READ_INPUTS_1 = bytes.fromhex("01 02 00 00 00 20 79 d2")
COIL0_ON_1 = bytes.fromhex("01 05 00 00 ff 00 8c 3a")
COIL0_OFF_1 = bytes.fromhex("01 05 00 00 00 00 cd ca")


def crc(frame: bytes) -> bytes:
    """Modbus CRC-16 written out here, independent of the library both ends use."""
    value = 0xFFFF
    for byte in frame:
        value ^= byte
        for _ in range(8):
            value = (value >> 1) ^ 0xA001 if value & 1 else value >> 1
    return value.to_bytes(2, "little")


def with_crc(hex_text: str) -> bytes:
    body = bytes.fromhex(hex_text)
    return body + crc(body)


@pytest.fixture
def msim() -> Iterator[ModbusLockBoardSimulator]:
    simulator = ModbusLockBoardSimulator(boards=[0, 1])
    yield simulator
    simulator.stop()


@pytest.fixture
def line(msim: ModbusLockBoardSimulator) -> Iterator[serial.SerialBase]:
    port = serial.serial_for_url(msim.start_pty(), baudrate=19200, timeout=0.3)
    yield port
    port.close()


def ask(port: serial.SerialBase, frame: bytes, size: int) -> bytes:
    port.reset_input_buffer()
    port.write(frame)
    return port.read(size)


def test_the_handwritten_crc_agrees_with_textbook_frames() -> None:
    assert with_crc("01 05 00 00 ff 00") == COIL0_ON_1
    assert with_crc("01 02 00 00 00 20") == READ_INPUTS_1


def test_all_latched_and_empty_reads_as_sixteen_ones_then_sixteen_zeros(line: serial.SerialBase) -> None:
    assert ask(line, READ_INPUTS_1, 9) == with_crc("01 02 04 ff ff 00 00")


def test_coil_on_opens_the_latch_and_is_echoed(msim: ModbusLockBoardSimulator, line: serial.SerialBase) -> None:
    assert ask(line, COIL0_ON_1, 8) == COIL0_ON_1
    assert msim.is_open(0, 0) and msim.coil_on(0, 0)
    assert ask(line, COIL0_OFF_1, 8) == COIL0_OFF_1
    assert not msim.coil_on(0, 0)
    assert ask(line, READ_INPUTS_1, 9) == with_crc("01 02 04 fe ff 00 00")  # input 0 reads open
    assert ask(line, with_crc("01 01 00 00 00 10"), 7) == with_crc("01 01 02 00 00")


def test_a_door_cannot_latch_while_its_coil_is_powered() -> None:
    with ModbusLockBoardSimulator(boards=[0], auto_close_s=0.0) as auto:
        port = serial.serial_for_url(auto.start_pty(), baudrate=19200, timeout=0.3)
        try:
            ask(port, COIL0_ON_1, 8)
            assert auto.is_open(0, 0)  # auto-close due at once, but the solenoid holds the latch
            ask(port, COIL0_OFF_1, 8)
            assert not auto.is_open(0, 0)
        finally:
            port.close()


def test_items_are_inputs_16_to_31(msim: ModbusLockBoardSimulator, line: serial.SerialBase) -> None:
    msim.set_item(1, 0, True)
    msim.set_item(1, 9, True)
    reply = ask(line, with_crc("02 02 00 10 00 10"), 7)  # unit 2 = board 1, inputs 16-31
    assert reply == with_crc("02 02 02 01 02")


def test_jammed_lock_stays_latched(msim: ModbusLockBoardSimulator, line: serial.SerialBase) -> None:
    msim.jam(0, 0)
    assert ask(line, COIL0_ON_1, 8) == COIL0_ON_1
    assert not msim.is_open(0, 0)


def test_offline_and_unknown_units_are_silent(msim: ModbusLockBoardSimulator, line: serial.SerialBase) -> None:
    msim.set_offline(0)
    assert ask(line, COIL0_ON_1, 8) == b""
    assert not msim.is_open(0, 0)
    assert ask(line, with_crc("09 02 00 00 00 20"), 9) == b""


def test_bad_addresses_and_functions_get_modbus_exceptions(line: serial.SerialBase) -> None:
    assert ask(line, with_crc("01 02 00 20 00 01"), 5) == with_crc("01 82 02")  # no input 32
    assert ask(line, with_crc("01 05 00 10 ff 00"), 5) == with_crc("01 85 02")  # no coil 16
    assert ask(line, with_crc("01 03 00 00 00 01"), 5) == with_crc("01 83 01")  # no registers


def test_requests_with_a_bad_crc_are_ignored_and_counted(msim: ModbusLockBoardSimulator,
                                                         line: serial.SerialBase) -> None:
    assert ask(line, COIL0_ON_1[:-1] + b"\x00", 8) == b""
    assert not msim.is_open(0, 0)
    # after a silence the next request is read afresh; the corrupt one's 8 bytes were dropped
    assert ask(line, READ_INPUTS_1, 9) == with_crc("01 02 04 ff ff 00 00")
    msim.wait_idle()
    assert msim.stray_bytes == 8


def test_corrupt_replies_and_garbage_go_out_once(msim: ModbusLockBoardSimulator, line: serial.SerialBase) -> None:
    good = with_crc("01 02 04 ff ff 00 00")
    msim.corrupt_replies(1)
    corrupt = ask(line, READ_INPUTS_1, 9)
    assert corrupt[:-2] == good[:-2] and corrupt[-2:] != good[-2:]
    msim.inject_garbage(b"\xfb\x00")
    assert ask(line, READ_INPUTS_1, 11) == b"\xfb\x00" + good
    assert ask(line, READ_INPUTS_1, 9) == good


def test_reply_delay_holds_the_answer(msim: ModbusLockBoardSimulator, line: serial.SerialBase) -> None:
    msim.set_reply_delay(0.5)
    assert ask(line, READ_INPUTS_1, 9) == b""  # not within the port's 0.3 s
    line.timeout = 2.0
    assert line.read(9) == with_crc("01 02 04 ff ff 00 00")


def test_units_can_be_any_slave_addresses() -> None:
    with ModbusLockBoardSimulator(boards=[0, 1], units=[17, 30]) as sim:
        port = serial.serial_for_url(sim.start_pty(), baudrate=19200, timeout=0.3)
        try:
            assert ask(port, with_crc("1e 05 00 03 ff 00"), 8) == with_crc("1e 05 00 03 ff 00")
            assert sim.is_open(1, 3) and sim.unit_of(1) == 30
        finally:
            port.close()
    with pytest.raises(ValueError, match="unit ids"):
        ModbusLockBoardSimulator(boards=[0, 1], units=[0, 1])


def test_console_takes_crc_and_the_common_commands(msim: ModbusLockBoardSimulator) -> None:
    assert run_modbus_command(msim, "crc 2") == "ok"
    assert run_modbus_command(msim, "open 0 3") == "ok" and msim.is_open(0, 3)
    assert run_modbus_command(msim, "crc x").startswith("error:")
    assert run_modbus_command(msim, "echo on").startswith("error:")
    assert "crc N" in run_modbus_command(msim, "help")
    assert run_modbus_command(msim, "status").startswith("board 0 online: open 3")


def test_edge_sim_lockboard_protocol_modbus_serves_the_real_driver() -> None:
    process = subprocess.Popen([sys.executable, "-m", "edge", "sim", "lockboard", "--protocol", "modbus",
                                "--boards", "0", "--tcp", "0"],
                               cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdin is not None
        url = process.stdout.readline().strip()
        assert url.startswith("socket://127.0.0.1:")
        process.stdin.write("jam 0 2\n")
        process.stdin.flush()
        assert process.stdout.readline().strip() == "ok"
        bus = open_lockboard_bus(url, boards=[0], protocol="modbus", reply_timeout_s=0.5, pulse_s=0.02,
                                 confirm_window_s=0.05, unlock_gap_s=0.0)
        try:
            assert bus.unlock(0, 4).opened
            jammed = bus.unlock(0, 2)
            assert not jammed.opened and jammed.state.latch is Latch.CLOSED
        finally:
            bus.close()
        process.stdin.write("status\n")
        process.stdin.flush()
        assert process.stdout.readline().strip() == "board 0 online: open 4 items - jammed 2"
    finally:
        process.terminate()
        process.wait(5)


def test_edge_sim_lockboard_refuses_an_unknown_protocol() -> None:
    result = subprocess.run([sys.executable, "-m", "edge", "sim", "lockboard", "--protocol", "canbus"],
                            cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert result.returncode == 2 and "--protocol" in result.stderr
