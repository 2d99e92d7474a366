"""Driver for Kerong KR-CU16 lock boards on one RS-485 bus.

Protocol: ../shared/protocols/lockboard-kerong-cu16.md. Every exchange runs on the port
owner thread (see port.py); the policy that strings exchanges together (retries, unlock
confirmation) runs in the caller's thread, so other callers' reads slip in between steps.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import serial

from .base import LOCKS_PER_BOARD, BoardStatus, Latch, LockState, UnlockResult, unlock_confirmed
from .port import PortOwner, open_at_start, open_rs485_port
from .protocol import (
    BUS_QUERY,
    MAX_LOCK_INDEX,
    REPLY_LEN,
    Cmd,
    FrameError,
    FrameParser,
    Reply,
    address,
    decode_reply,
    status_request,
    unlock_board_request,
    unlock_request,
)

log = logging.getLogger("edge.drivers.lockboard")

# How long to wait for a board's reply. The one default: LockerSettings and
# open_lockboard_bus use it too. A USB RS-485 adapter adds up to ~20 ms of latency to the
# 4.7 ms reply frame, and a missed reply costs a whole retry, so it is roomy.
REPLY_TIMEOUT_S = 0.25

# Only a stuck owner thread gets near this: the longest queue of real work is far shorter.
CALL_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class KerongSettings:
    url: str  # device path, PTY path or socket://host:port (pyserial serial_for_url)
    boards: tuple[int, ...]  # board addresses on this bus
    closed_bit: int = 1  # latch bit value that means "latched closed"
    baudrate: int = 19200
    reply_timeout_s: float = REPLY_TIMEOUT_S
    unlock_gap_s: float = 0.1  # between unlock pulses: a shared supply sags otherwise
    rs485_rts: bool = False  # let the kernel drive RTS for the transceiver direction
    status_attempts: int = 3
    # After an unlock: how long the line must stay quiet before we speak again. Firmware
    # that echoes a status frame starts within this; its frame is then drained whole.
    echo_window_s: float = 0.0  # 0: most firmware never echo (ADR 0011); a site sets ~0.005
    # How long status may keep showing the latch closed before one re-send; the board's own
    # pulse lasts about 500 ms, a latch that has not moved by then will not.
    confirm_window_s: float = 0.5
    confirm_poll_s: float = 0.02
    scan_window_s: float = 0.3  # bus query: all boards answer within this
    call_timeout_s: float = field(default=CALL_TIMEOUT_S, repr=False)

    def __post_init__(self) -> None:
        if self.closed_bit not in (0, 1):
            raise ValueError(f"closed_bit must be 0 or 1, not {self.closed_bit!r}")
        if not self.boards:
            raise ValueError("a lock-board bus needs at least one board")
        for board in self.boards:
            address(board)
        if self.status_attempts < 1:
            raise ValueError("status_attempts must be at least 1")


@dataclass
class _Heard:
    match: Reply | None = None
    replies: list[Reply] = field(default_factory=list)
    stray_bytes: int = 0

    def describe_miss(self, window_s: float) -> str:
        within = f"within {window_s * 1000:g} ms"
        if self.stray_bytes:
            return f"invalid reply ({self.stray_bytes} bytes discarded) {within}"
        if self.replies:
            return f"only unrelated replies ({len(self.replies)}) {within}"
        return f"no reply {within}"


def _send(port: serial.SerialBase, frame: bytes) -> None:
    port.reset_input_buffer()  # a late answer to an earlier request must not pass for this one's
    port.write(frame)
    port.flush()
    log.debug("tx %s", frame.hex(" "))


def _listen(port: serial.SerialBase, *, until: Callable[[Reply], bool], deadline: float,
            quiet_deadline: float | None = None) -> _Heard:
    """Read well-formed replies until one satisfies `until` or the deadline passes.

    With `quiet_deadline`, give up early if not a single byte has arrived by then.
    """
    parser = FrameParser(REPLY_LEN)
    heard = _Heard()
    end = quiet_deadline or deadline
    while (remaining := end - time.monotonic()) > 0:
        port.timeout = remaining
        chunk = port.read(max(1, port.in_waiting))
        if not chunk:
            break
        end = deadline
        log.debug("rx %s", chunk.hex(" "))
        for frame in parser.feed(chunk):
            try:
                reply = decode_reply(frame)
            except FrameError as exc:
                log.debug("ignored: %s", exc)
                continue
            heard.replies.append(reply)
            if until(reply):
                heard.match = reply
                break
        if heard.match:
            break
    heard.stray_bytes = parser.discarded
    return heard


def _check_lock(lock: int) -> None:
    if not 0 <= lock <= MAX_LOCK_INDEX:
        raise ValueError(f"lock {lock} is outside 0-{MAX_LOCK_INDEX}")


class KerongBus:
    """LockBoardBus for Kerong KR-CU16 boards. Thread-safe; see base.LockBoardBus."""

    def __init__(self, settings: KerongSettings) -> None:
        self._settings = settings
        self._owner = PortOwner(settings.url, self._open_port, gap_s=settings.unlock_gap_s,
                                call_timeout_s=settings.call_timeout_s)
        open_at_start(self._owner)

    @property
    def boards(self) -> tuple[int, ...]:
        return self._settings.boards

    def read_board(self, board: int) -> BoardStatus:
        self._check_board(board)
        return self._read_status(board)

    def unlock(self, board: int, lock: int) -> UnlockResult:
        self._check_board(board)
        _check_lock(lock)
        pulse = partial(self._pulse_exchange, unlock_request(board, lock))

        def pulse_and_read() -> BoardStatus:
            self._owner.call(pulse, paced=True)
            return self._await_status(board, lambda s: s.locks[lock].latch is not Latch.CLOSED)

        return unlock_confirmed(board, lock, pulse_and_read)

    def unlock_board(self, board: int) -> list[UnlockResult]:
        self._check_board(board)
        log.warning("technician unlock of every lock on board %d", board)
        self._owner.call(partial(self._pulse_exchange, unlock_board_request(board)), paced=True)
        status = self._await_status(board, lambda s: all(lk.latch is Latch.OPEN for lk in s.locks))
        return [
            UnlockResult(board, lock, state.latch is Latch.OPEN, 1, state,
                         None if state.latch is Latch.OPEN
                         else status.error or "latch still closed after the board-wide unlock")
            for lock, state in enumerate(status.locks)
        ]

    def scan(self) -> list[int]:
        return self._owner.call(self._scan_exchange)

    def close(self) -> None:
        self._owner.close()

    def __enter__(self) -> KerongBus:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- policy, in the caller's thread -------------------------------------------------

    def _read_status(self, board: int) -> BoardStatus:
        attempts = self._settings.status_attempts
        for attempt in range(1, attempts + 1):
            heard = self._owner.call(partial(self._status_exchange, board))
            if heard.match:
                return self._board_status(heard.match)
            miss = heard.describe_miss(self._settings.reply_timeout_s)
            log.info("board %d status attempt %d/%d: %s", board, attempt, attempts, miss)
        error = f"board {board} unreachable: {miss} (after {attempts} attempts)"
        log.warning(error)
        return BoardStatus.unreachable(board, error)

    def _await_status(self, board: int, done: Callable[[BoardStatus], bool]) -> BoardStatus:
        """Poll status until `done`, until the board falls silent, or the confirm window ends."""
        deadline = time.monotonic() + self._settings.confirm_window_s
        while True:
            status = self._read_status(board)
            if not status.reachable or done(status) or time.monotonic() >= deadline:
                return status
            time.sleep(self._settings.confirm_poll_s)

    def _board_status(self, reply: Reply) -> BoardStatus:
        closed_bit = self._settings.closed_bit
        locks = tuple(
            LockState(
                Latch.CLOSED if (reply.latches >> i & 1) == closed_bit else Latch.OPEN,
                bool(reply.items >> i & 1),
            )
            for i in range(LOCKS_PER_BOARD)
        )
        return BoardStatus(reply.board, True, locks)

    def _check_board(self, board: int) -> None:
        if board not in self._settings.boards:
            raise ValueError(f"board {board} is not on this bus (boards {list(self._settings.boards)})")

    # --- exchanges, on the port owner thread ---------------------------------------------

    def _status_exchange(self, board: int, port: serial.SerialBase) -> _Heard:
        _send(port, status_request(board))
        return _listen(port, until=lambda r: r.cmd is Cmd.STATUS_REPLY and r.board == board,
                       deadline=time.monotonic() + self._settings.reply_timeout_s)

    def _pulse_exchange(self, frame: bytes, port: serial.SerialBase) -> None:
        """Send an unlock and drain the status frame some firmware echo after it."""
        _send(port, frame)
        now = time.monotonic()
        heard = _listen(port, until=lambda r: True, deadline=now + self._settings.reply_timeout_s,
                        quiet_deadline=now + self._settings.echo_window_s)
        if heard.replies or heard.stray_bytes:
            log.debug("drained after unlock: %d frame(s), %d stray bytes", len(heard.replies), heard.stray_bytes)

    def _scan_exchange(self, port: serial.SerialBase) -> list[int]:
        _send(port, BUS_QUERY)
        heard = _listen(port, until=lambda r: False, deadline=time.monotonic() + self._settings.scan_window_s)
        return sorted({r.board for r in heard.replies if r.cmd is Cmd.QUERY_REPLY})

    # --- port -----------------------------------------------------------------------------

    def _open_port(self) -> serial.SerialBase:
        s = self._settings
        return open_rs485_port(s.url, s.baudrate, s.reply_timeout_s, s.rs485_rts)
