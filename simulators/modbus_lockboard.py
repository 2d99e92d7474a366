"""A bus of Modbus RTU relay I/O boards wired as lock boards, speaking the exact bytes, on a
PTY or a TCP port.

Each board is a Modbus slave (unit id, board + 1 unless given): coil N drives lock N's
solenoid, discrete input N reads its latch, input 16 + N its item sensor. A coil switched
on pulls the latch open (unless jammed); the door stays open until pushed shut, and cannot
latch while the coil is still on. Requests and replies are framed with pymodbus's RTU
framer and PDU classes; transport, controls and fault injection are the KR-CU16
simulator's (simulators/lockboard.py), plus `corrupt_replies(n)` for CRC errors.

    python -m simulators.modbus_lockboard --boards 0,1 [--units 1,2] [--tcp PORT]
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu.bit_message import (
    ReadCoilsRequest,
    ReadCoilsResponse,
    ReadDiscreteInputsRequest,
    ReadDiscreteInputsResponse,
    WriteSingleCoilRequest,
    WriteSingleCoilResponse,
)

from edge.drivers.lockboard.base import LOCKS_PER_BOARD
from simulators.lockboard import HELP, LockBoardSimulator, ReceivedFrame, _Lock, run_command, serve_console

ILLEGAL_FUNCTION, ILLEGAL_ADDRESS = 1, 2
# Modbus RTU ends a frame with 3.5 characters of silence; a PTY has no baud rate, so a
# pause this long between reads ends a partial frame (a human typing garbage, say).
FRAME_SILENCE_S = 0.05


@dataclass
class _CoilLock(_Lock):
    coil: bool = False  # solenoid powered


class RtuRequestParser:
    """Splits bytes into Modbus RTU request frames: length from the function code (pymodbus's
    PDU classes), CRC checked; bytes that start no valid frame are dropped one at a time."""

    _decoder = DecodePDU(is_server=True)

    def __init__(self) -> None:
        self._buf = b""
        self._last_feed = 0.0
        self.discarded = 0
        self.crc_errors = 0

    def feed(self, data: bytes) -> list[bytes]:
        now = time.monotonic()
        if self._buf and now - self._last_feed > FRAME_SILENCE_S:
            self._drop(len(self._buf))  # the line fell silent mid-frame: that frame is over
        self._last_feed = now
        self._buf += data
        frames = []
        while len(self._buf) >= 4:
            size = self._frame_size()
            if size is None:
                self._drop(1)
                continue
            if len(self._buf) < size:
                break
            frame = self._buf[:size]
            if FramerRTU.compute_CRC(frame[:-2]) != int.from_bytes(frame[-2:], "big"):
                self.crc_errors += 1
                self._drop(1)
                continue
            frames.append(frame)
            self._buf = self._buf[size:]
        return frames

    def _frame_size(self) -> int | None:
        pdu_class = self._decoder.lookupPduClass(self._buf)
        if pdu_class is None or pdu_class is ExceptionResponse:
            return None
        try:
            size = pdu_class.calculateRtuFrameSize(self._buf)
        except Exception:  # noqa: BLE001 - pymodbus raises its own for classes it cannot size
            return None
        return size if 4 <= size <= 256 else None

    def _drop(self, count: int) -> None:
        self._buf = self._buf[count:]
        self.discarded += count


def decode_request(frame: bytes) -> ModbusPDU | None:
    """The request PDU of a whole RTU frame, with its unit id; None if pymodbus cannot read it."""
    pdu = RtuRequestParser._decoder.decode(frame[1:-2])
    if pdu is not None:
        pdu.dev_id = frame[0]
    return pdu


class ModbusLockBoardSimulator(LockBoardSimulator):
    def __init__(self, boards: Iterable[int] = (0, 1), closed_bit: int = 1,
                 auto_close_s: float | None = None, units: Sequence[int] | None = None,
                 item_sensors: bool = True, coil_base: int = 0, input_base: int = 0) -> None:
        boards = list(boards)
        super().__init__(boards, closed_bit=closed_bit, auto_close_s=auto_close_s)
        units = list(units) if units else [b + 1 for b in boards]
        if len(units) != len(boards) or len(set(units)) != len(units) or not all(1 <= u <= 247 for u in units):
            raise ValueError(f"units must be distinct Modbus unit ids 1-247, one per board, not {units}")
        self._boards = {b: [_CoilLock() for _ in range(LOCKS_PER_BOARD)] for b in boards}
        self._board_of_unit = dict(zip(units, boards))
        self._item_sensors = item_sensors
        self._coil_base, self._input_base = coil_base, input_base
        self._corrupt_next = 0
        self._framer = FramerRTU(DecodePDU(is_server=True))

    def _request_parser(self) -> RtuRequestParser:  # type: ignore[override]
        return RtuRequestParser()

    # --- board behaviour ------------------------------------------------------------------

    def _answer(self, frame: bytes) -> bytes:
        request = decode_request(frame)
        with self._state:
            self._frames.append(ReceivedFrame(time.perf_counter(), frame))
            board = self._board_of_unit.get(frame[0])
            if request is None or board is None or board in self._offline:
                return b""  # another unit's frame, or this board is silent
            reply = self._framer.buildFrame(self._reply_to_pdu(board, request))
            if self._corrupt_next:
                self._corrupt_next -= 1
                reply = reply[:-1] + bytes([reply[-1] ^ 0xFF])
            reply, self._garbage = self._garbage + reply, b""
            delay = self._reply_delay_s
        if delay:
            time.sleep(delay)
        return reply

    def _reply_to_pdu(self, board: int, request: ModbusPDU) -> ModbusPDU:
        locks = self._boards[board]
        unit = request.dev_id
        if isinstance(request, ReadDiscreteInputsRequest):
            inputs = self._inputs(locks)
            first = request.address - self._input_base
            if first < 0 or first + request.count > len(inputs):
                return self._refuse(request, ILLEGAL_ADDRESS)
            return ReadDiscreteInputsResponse(dev_id=unit, bits=inputs[first:first + request.count])
        if isinstance(request, WriteSingleCoilRequest):
            lock = request.address - self._coil_base
            if not 0 <= lock < LOCKS_PER_BOARD:
                return self._refuse(request, ILLEGAL_ADDRESS)
            self._set_coil(locks[lock], bool(request.bits[0]))
            return WriteSingleCoilResponse(dev_id=unit, address=request.address, bits=[bool(request.bits[0])])
        if isinstance(request, ReadCoilsRequest):
            first = request.address - self._coil_base
            if first < 0 or first + request.count > LOCKS_PER_BOARD:
                return self._refuse(request, ILLEGAL_ADDRESS)
            coils = [lock.coil for lock in locks[first:first + request.count]]
            return ReadCoilsResponse(dev_id=unit, bits=coils)
        return self._refuse(request, ILLEGAL_FUNCTION)

    @staticmethod
    def _refuse(request: ModbusPDU, code: int) -> ExceptionResponse:
        refusal = ExceptionResponse(request.function_code, code)
        refusal.dev_id = request.dev_id
        return refusal

    def _inputs(self, locks: list[_CoilLock]) -> list[bool]:
        for lock in locks:
            self._settle(lock)
        latches = [bool(self._closed_bit) if lock.latched else not self._closed_bit for lock in locks]
        return latches + ([lock.item for lock in locks] if self._item_sensors else [])

    def _set_coil(self, lock: _CoilLock, on: bool) -> None:
        lock.coil = on
        if on:
            self._pulse(lock)  # the solenoid pulls the latch back, unless it is jammed

    def _settle(self, lock: _Lock) -> None:
        if getattr(lock, "coil", False):
            return  # a powered solenoid holds the latch back: the door cannot latch
        super()._settle(lock)

    # --- controls and records -------------------------------------------------------------

    def corrupt_replies(self, count: int = 1) -> None:
        """The next `count` replies go out with a wrong CRC (noise on the line)."""
        with self._state:
            self._corrupt_next += count

    def coil_on(self, board: int, lock: int) -> bool:
        with self._state:
            return self._lock(board, lock).coil  # type: ignore[attr-defined]

    def frames_of(self, cmd: int) -> list[bytes]:
        """Bytes of each received frame with Modbus function code `cmd`, in arrival order."""
        return [f.data for f in self.frames_received if f.data[1] == cmd]

    def unit_of(self, board: int) -> int:
        return next(u for u, b in self._board_of_unit.items() if b == board)


# --- command line -------------------------------------------------------------------------

MODBUS_HELP = HELP + "\n  crc N                    the next N replies go out with a wrong CRC"


def run_modbus_command(sim: ModbusLockBoardSimulator, line: str) -> str:
    """The KR-CU16 console's commands, plus `crc N`."""
    words = line.split()
    if words[:1] == ["help"]:
        return MODBUS_HELP
    if words[:1] == ["echo"]:
        return "error: Modbus boards always answer a coil write; 'echo' is for KR-CU16"
    if words[:1] == ["crc"]:
        try:
            count = int(words[1]) if len(words) == 2 else -1
            if count < 0:
                raise ValueError
        except ValueError:
            return f"error: cannot read {line.strip()!r}; try 'crc 3'"
        sim.corrupt_replies(count)
        return "ok"
    return run_command(sim, line)


def run_cli(boards: list[int], tcp_port: int | None = None, closed_bit: int = 1,
            auto_close_s: float | None = None, units: list[int] | None = None) -> int:
    """Run a simulator until Ctrl-C: first stdout line is the port to open, then a console."""
    return serve_console(lambda: ModbusLockBoardSimulator(boards, closed_bit=closed_bit, auto_close_s=auto_close_s,
                                                          units=units),
                         tcp_port, run_modbus_command, "Modbus lock-board simulator")


def simulator_for(boards: Iterable[int], closed_bit: int = 1, auto_close_s: float | None = None, *,
                  protocol: str = "kerong", **bus_options: Any) -> LockBoardSimulator:
    """The simulator for a bus opened with open_lockboard_bus(..., protocol=..., **bus_options):
    it takes the options that describe the boards and leaves the driver's own (pulse_s...)."""
    if protocol == "modbus":
        wiring = {k: v for k, v in bus_options.items() if k in ("units", "item_sensors", "coil_base", "input_base")}
        return ModbusLockBoardSimulator(boards, closed_bit=closed_bit, auto_close_s=auto_close_s, **wiring)
    return LockBoardSimulator(boards, closed_bit=closed_bit, auto_close_s=auto_close_s)


def _numbers(text: str | None) -> list[int] | None:
    return [int(part) for part in text.split(",")] if text else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.modbus_lockboard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boards", default="0,1", help="board numbers, comma separated")
    parser.add_argument("--units", help="Modbus unit id of each board (default board + 1)")
    parser.add_argument("--tcp", type=int, metavar="PORT", help="serve on TCP instead of a PTY")
    parser.add_argument("--closed-bit", type=int, choices=(0, 1), default=1)
    parser.add_argument("--auto-close", type=float, metavar="SECONDS", help="doors close by themselves")
    args = parser.parse_args(argv)
    try:
        boards, units = _numbers(args.boards), _numbers(args.units)
    except ValueError:
        parser.error("--boards and --units take numbers separated by commas")
    return run_cli(boards or [], args.tcp, args.closed_bit, args.auto_close, units)


if __name__ == "__main__":
    sys.exit(main())
