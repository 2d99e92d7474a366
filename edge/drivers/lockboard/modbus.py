"""Driver for generic Modbus RTU relay I/O boards used as lock boards, on one RS-485 bus.

Each board is one Modbus slave (unit id). Coil N drives lock N's solenoid; discrete input
N reads lock N's latch and, on boards wired with item sensors, input 16 + N reads the item
sensor. A pulse is coil on, a wait of `pulse_s`, coil off (ADR 0130).

Frames are built and decoded with pymodbus's RTU framer and PDU classes; the bytes go over
our own pyserial port on the port owner thread (port.py), as for KR-CU16, so pacing,
reopening after a port failure and the thread model are the same for both families.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import serial
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu.bit_message import ReadDiscreteInputsRequest, WriteSingleCoilRequest

from .base import LOCKS_PER_BOARD, BoardStatus, Latch, LockState, UnlockResult, unlock_confirmed
from .port import PortOwner, open_at_start, open_rs485_port

log = logging.getLogger("edge.drivers.lockboard")

CALL_TIMEOUT_S = 30.0
READ_DISCRETE_INPUTS = ReadDiscreteInputsRequest.function_code  # 0x02
WRITE_SINGLE_COIL = WriteSingleCoilRequest.function_code  # 0x05
EXCEPTION_REPLY_LEN = 5  # unit, function | 0x80, code, CRC x2
WRITE_COIL_REPLY_LEN = 8  # the request echoed
MODBUS_EXCEPTIONS = {1: "illegal function", 2: "illegal data address", 3: "illegal data value",
                     4: "slave device failure", 6: "slave device busy"}


@dataclass(frozen=True)
class ModbusSettings:
    url: str  # device path, PTY path or socket://host:port (pyserial serial_for_url)
    boards: tuple[int, ...]  # board numbers the domain uses (0-15)
    units: tuple[int, ...] = ()  # Modbus unit id of each board, in `boards` order; () = board + 1
    closed_bit: int = 1  # input value that means "latched closed"
    baudrate: int = 19200
    reply_timeout_s: float = 0.1
    unlock_gap_s: float = 0.1  # between coil pulses: a shared supply sags otherwise
    rs485_rts: bool = False
    status_attempts: int = 3
    pulse_s: float = 0.3  # how long a coil stays on; the solenoid needs about this long
    confirm_window_s: float = 0.5  # from coil on: how long the latch may read closed
    confirm_poll_s: float = 0.02
    coil_base: int = 0  # coil address of lock 0
    input_base: int = 0  # discrete input address of lock 0's latch
    item_sensors: bool = True  # inputs input_base+16.. read the item sensors
    call_timeout_s: float = field(default=CALL_TIMEOUT_S, repr=False)

    def __post_init__(self) -> None:
        if self.closed_bit not in (0, 1):
            raise ValueError(f"closed_bit must be 0 or 1, not {self.closed_bit!r}")
        if not self.boards:
            raise ValueError("a lock-board bus needs at least one board")
        if any(not 0 <= b <= 15 for b in self.boards) or len(set(self.boards)) != len(self.boards):
            raise ValueError(f"boards must be distinct numbers 0-15, not {list(self.boards)}")
        units = self.units or tuple(b + 1 for b in self.boards)
        if len(units) != len(self.boards):
            raise ValueError(f"{len(self.boards)} boards need {len(self.boards)} Modbus unit ids, "
                             f"not {list(self.units)}")
        if any(not 1 <= u <= 247 for u in units) or len(set(units)) != len(units):
            raise ValueError(f"Modbus unit ids must be distinct, 1-247, not {list(units)}")
        object.__setattr__(self, "units", units)
        if self.status_attempts < 1:
            raise ValueError("status_attempts must be at least 1")
        if self.pulse_s <= 0:
            raise ValueError("pulse_s must be above 0")

    def unit_of(self, board: int) -> int:
        return self.units[self.boards.index(board)]

    @property
    def input_count(self) -> int:
        return LOCKS_PER_BOARD * (2 if self.item_sensors else 1)

    @property
    def silent_interval_s(self) -> float:
        """Modbus RTU's 3.5 character gap between frames (fixed 1.75 ms above 19200 baud)."""
        return max(3.5 * 11 / self.baudrate, 0.00175)


@dataclass(frozen=True)
class LineCounters:
    """What the line did wrong since the bus was opened (for `edge diag` and the bench)."""
    replies: int = 0
    timeouts: int = 0
    crc_errors: int = 0
    stray_bytes: int = 0
    exceptions: int = 0


class _ReplyHunter:
    """Finds the one reply a request expects among whatever bytes the line carries.

    A candidate starts with our unit id and the function code (or its exception form) and
    has the expected length; a candidate whose CRC fails is counted and skipped one byte at a
    time, so a reply after garbage or after a corrupt frame is still found."""

    _decoder = DecodePDU(is_server=False)

    def __init__(self, unit: int, function_code: int, reply_len: int) -> None:
        self._unit, self._fc, self._len = unit, function_code, reply_len
        self._buf = b""
        self.stray_bytes = 0
        self.crc_errors = 0

    def feed(self, chunk: bytes) -> ModbusPDU | None:
        self._buf += chunk
        while len(self._buf) >= 3:
            size = self._candidate_size()
            if size is None:
                self._skip()
                continue
            if len(self._buf) < size:
                return None  # wait for the rest
            frame = self._buf[:size]
            if FramerRTU.compute_CRC(frame[:-2]) != int.from_bytes(frame[-2:], "big"):
                self.crc_errors += 1
                log.debug("crc error in %s", frame.hex(" "))
                self._skip()
                continue
            pdu = self._decoder.decode(frame[1:-2])
            if pdu is None:
                self._skip()
                continue
            pdu.dev_id = self._unit
            self._buf = self._buf[size:]
            return pdu
        return None

    def finish(self) -> None:
        """The listening is over: what is left was never a reply."""
        self.stray_bytes += len(self._buf)
        self._buf = b""

    def _candidate_size(self) -> int | None:
        unit, fc, third = self._buf[0], self._buf[1], self._buf[2]
        if unit != self._unit:
            return None
        if fc == self._fc | 0x80:
            return EXCEPTION_REPLY_LEN
        if fc != self._fc:
            return None
        if fc == READ_DISCRETE_INPUTS and third != self._len - 5:  # byte count must match
            return None
        return self._len

    def _skip(self) -> None:
        self._buf = self._buf[1:]
        self.stray_bytes += 1


@dataclass
class _Heard:
    reply: ModbusPDU | None
    stray_bytes: int
    crc_errors: int

    def describe_miss(self, window_s: float) -> str:
        within = f"within {window_s * 1000:g} ms"
        if isinstance(self.reply, ExceptionResponse):
            code = self.reply.exception_code
            return f"Modbus exception {code} ({MODBUS_EXCEPTIONS.get(code, 'unknown')})"
        if self.crc_errors:
            return f"CRC error ({self.crc_errors} corrupt frame(s), {self.stray_bytes} bytes discarded) {within}"
        if self.stray_bytes:
            return f"invalid reply ({self.stray_bytes} bytes discarded) {within}"
        return f"no reply {within}"

    @property
    def answered(self) -> bool:
        return self.reply is not None and not isinstance(self.reply, ExceptionResponse)


def _check_lock(lock: int) -> None:
    if not 0 <= lock < LOCKS_PER_BOARD:
        raise ValueError(f"lock {lock} is outside 0-{LOCKS_PER_BOARD - 1}")


class ModbusBus:
    """LockBoardBus for Modbus RTU relay I/O boards. Thread-safe; see base.LockBoardBus."""

    def __init__(self, settings: ModbusSettings) -> None:
        self._settings = settings
        self._framer = FramerRTU(DecodePDU(is_server=False))
        self._counters = LineCounters()
        self._line_free_at = 0.0  # owner thread only: when the RTU silent interval has passed
        self._pulse = threading.Lock()  # one coil energised at a time
        self._owner = PortOwner(settings.url, self._open_port, gap_s=settings.unlock_gap_s,
                                call_timeout_s=settings.call_timeout_s)
        open_at_start(self._owner)

    @property
    def boards(self) -> tuple[int, ...]:
        return self._settings.boards

    @property
    def counters(self) -> LineCounters:
        return self._counters

    def read_board(self, board: int) -> BoardStatus:
        self._check_board(board)
        return self._read_status(board)

    def unlock(self, board: int, lock: int) -> UnlockResult:
        self._check_board(board)
        _check_lock(lock)
        return unlock_confirmed(board, lock, lambda: self._pulse_and_confirm(board, lock))

    def unlock_board(self, board: int) -> list[UnlockResult]:
        """One lock after another, each paced and confirmed: energising 16 coils at once
        would sag the shared supply (a relay board has no board-wide pulse of its own)."""
        self._check_board(board)
        log.warning("technician unlock of every lock on board %d", board)
        return [self.unlock(board, lock) for lock in range(LOCKS_PER_BOARD)]

    def scan(self) -> list[int]:
        """Boards whose unit answers one status request (Modbus has no bus-wide query)."""
        return [b for b in self._settings.boards
                if self._owner.call(partial(self._status_exchange, b)).answered]

    def close(self) -> None:
        self._owner.close()

    def __enter__(self) -> ModbusBus:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- policy, in the caller's thread -------------------------------------------------

    def _pulse_and_confirm(self, board: int, lock: int) -> BoardStatus:
        """Coil on; read status until the latch moves or the pulse ends; coil off (always) once
        the whole pulse has passed; then, if the latch has not moved yet, keep reading until
        the confirm window ends."""
        opened: Callable[[BoardStatus], bool] = lambda s: s.locks[lock].latch is not Latch.CLOSED
        with self._pulse:
            started = time.monotonic()
            pulse_ends = started + self._settings.pulse_s
            try:  # coil off is sent whatever happens from here, a port failure on coil on included
                self._write_coil(board, lock, True, attempts=1)
                status = self._await_status(board, opened, pulse_ends)
                # A latch switch may flip before the bolt is fully back: the solenoid gets its
                # whole pulse, or the door could latch again.
                time.sleep(max(0.0, pulse_ends - time.monotonic()))
            finally:
                if not self._write_coil(board, lock, False, attempts=self._settings.status_attempts):
                    log.error("board %d lock %d: coil off not acknowledged; the solenoid may still be "
                              "powered", board, lock)
        if status.reachable and not opened(status):
            status = self._await_status(board, opened, started + self._settings.confirm_window_s)
        return status

    def _write_coil(self, board: int, lock: int, on: bool, *, attempts: int) -> bool:
        for attempt in range(1, attempts + 1):
            heard = self._owner.call(partial(self._coil_exchange, board, lock, on), paced=True)
            if heard.answered:
                return True
            log.info("board %d coil %d %s attempt %d/%d: %s", board, lock, "on" if on else "off",
                     attempt, attempts, heard.describe_miss(self._settings.reply_timeout_s))
        return False

    def _read_status(self, board: int) -> BoardStatus:
        attempts = self._settings.status_attempts
        for attempt in range(1, attempts + 1):
            heard = self._owner.call(partial(self._status_exchange, board))
            if heard.answered:
                return self._board_status(board, heard.reply.bits)
            miss = heard.describe_miss(self._settings.reply_timeout_s)
            log.info("board %d status attempt %d/%d: %s", board, attempt, attempts, miss)
            if isinstance(heard.reply, ExceptionResponse):
                break  # the board answered: asking again gets the same refusal
        error = f"board {board} (Modbus unit {self._settings.unit_of(board)}) unreachable: {miss}"
        error += f" (after {attempt} attempt{'s' if attempt > 1 else ''})"
        log.warning(error)
        return BoardStatus.unreachable(board, error)

    def _await_status(self, board: int, done: Callable[[BoardStatus], bool], deadline: float) -> BoardStatus:
        """Poll status until `done`, until the board falls silent, or the deadline."""
        while True:
            status = self._read_status(board)
            if not status.reachable or done(status) or time.monotonic() >= deadline:
                return status
            time.sleep(min(self._settings.confirm_poll_s, max(0.0, deadline - time.monotonic())))

    def _board_status(self, board: int, bits: list[bool]) -> BoardStatus:
        closed = bool(self._settings.closed_bit)
        items = bits[LOCKS_PER_BOARD:] if self._settings.item_sensors else [None] * LOCKS_PER_BOARD
        locks = tuple(LockState(Latch.CLOSED if bits[i] == closed else Latch.OPEN, items[i])
                      for i in range(LOCKS_PER_BOARD))
        return BoardStatus(board, True, locks)

    def _check_board(self, board: int) -> None:
        if board not in self._settings.boards:
            raise ValueError(f"board {board} is not on this bus (boards {list(self._settings.boards)})")

    # --- exchanges, on the port owner thread ---------------------------------------------

    def _status_exchange(self, board: int, port: serial.SerialBase) -> _Heard:
        s = self._settings
        request = ReadDiscreteInputsRequest(dev_id=s.unit_of(board), address=s.input_base, count=s.input_count)
        return self._exchange(port, request, 5 + (s.input_count + 7) // 8)

    def _coil_exchange(self, board: int, lock: int, on: bool, port: serial.SerialBase) -> _Heard:
        s = self._settings
        request = WriteSingleCoilRequest(dev_id=s.unit_of(board), address=s.coil_base + lock, bits=[on])
        return self._exchange(port, request, WRITE_COIL_REPLY_LEN)

    def _exchange(self, port: serial.SerialBase, request: ModbusPDU, reply_len: int) -> _Heard:
        frame = self._framer.buildFrame(request)
        if (wait := self._line_free_at - time.monotonic()) > 0:
            time.sleep(wait)  # slaves find frame ends by this silence
        port.reset_input_buffer()  # a late answer to an earlier request must not pass for this one's
        port.write(frame)
        port.flush()
        log.debug("tx %s", frame.hex(" "))
        hunter = _ReplyHunter(request.dev_id, request.function_code, reply_len)
        reply = self._listen(port, hunter, time.monotonic() + self._settings.reply_timeout_s)
        hunter.finish()
        self._line_free_at = time.monotonic() + self._settings.silent_interval_s
        heard = _Heard(reply, hunter.stray_bytes, hunter.crc_errors)
        self._count(heard)
        return heard

    def _listen(self, port: serial.SerialBase, hunter: _ReplyHunter, deadline: float) -> ModbusPDU | None:
        while (remaining := deadline - time.monotonic()) > 0:
            port.timeout = remaining
            chunk = port.read(max(1, port.in_waiting))
            if not chunk:
                break
            log.debug("rx %s", chunk.hex(" "))
            if (reply := hunter.feed(chunk)) is not None:
                return reply
        return None

    def _count(self, heard: _Heard) -> None:
        c = self._counters
        self._counters = LineCounters(
            replies=c.replies + (heard.reply is not None),
            timeouts=c.timeouts + (heard.reply is None),
            crc_errors=c.crc_errors + heard.crc_errors,
            stray_bytes=c.stray_bytes + heard.stray_bytes,
            exceptions=c.exceptions + isinstance(heard.reply, ExceptionResponse),
        )

    # --- port -----------------------------------------------------------------------------

    def _open_port(self) -> serial.SerialBase:
        s = self._settings
        return open_rs485_port(s.url, s.baudrate, s.reply_timeout_s, s.rs485_rts)
