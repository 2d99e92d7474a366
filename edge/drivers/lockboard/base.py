"""What the locker domain may ask of a lock-board bus, whatever the board brand.

The domain speaks in (board, lock) pairs, both counted from 0; mapping compartments to
pairs is the locker layout's job, not the driver's. Drivers never know about parcels.
"""
from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

LOCKS_PER_BOARD = 16


class Latch(str, enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    UNKNOWN = "unknown"  # board silent or reply invalid: never assume closed


@dataclass(frozen=True)
class LockState:
    latch: Latch
    item: bool | None  # infrared item sensor; None when unknown


UNKNOWN_LOCK = LockState(Latch.UNKNOWN, None)


@dataclass(frozen=True)
class BoardStatus:
    board: int
    reachable: bool
    locks: tuple[LockState, ...]  # always LOCKS_PER_BOARD entries
    error: str | None = None

    @classmethod
    def unreachable(cls, board: int, error: str) -> "BoardStatus":
        return cls(board, False, (UNKNOWN_LOCK,) * LOCKS_PER_BOARD, error)


@dataclass(frozen=True)
class UnlockResult:
    board: int
    lock: int
    opened: bool  # True only when a status read confirmed the latch open
    attempts: int  # unlock frames sent: 1, or 2 after one confirmed retry
    state: LockState
    error: str | None = None


class LockBoardBus(Protocol):
    """One bus of lock boards. Implementations are thread-safe: calls are serialised."""

    def read_board(self, board: int) -> BoardStatus: ...

    def unlock(self, board: int, lock: int) -> UnlockResult:
        """Pulse one lock, then confirm by status; re-send at most once, and only when
        status shows the latch still closed."""
        ...

    def unlock_board(self, board: int) -> list[UnlockResult]:
        """Technician only: open every lock of a board."""
        ...

    def scan(self) -> list[int]:
        """Boards that answer a bus query."""
        ...

    def close(self) -> None: ...


class BusError(Exception):
    """The port itself failed (unplugged adapter, bad URL). Board silence is not an
    exception: it is a BoardStatus with reachable=False."""


def unlock_confirmed(board: int, lock: int, pulse_and_read: Callable[[], BoardStatus]) -> UnlockResult:
    """The unlock rule every lock-board family follows (ADR 0011): pulse, read the latch; pulse
    once more only while the latch still reads closed; silence is no licence to pulse again."""
    for attempt in (1, 2):
        status = pulse_and_read()
        state = status.locks[lock]
        if state.latch is Latch.OPEN:
            return UnlockResult(board, lock, True, attempt, state)
        if state.latch is Latch.UNKNOWN:
            return UnlockResult(board, lock, False, attempt, state, status.error)
        logging.getLogger("edge.drivers.lockboard").warning(
            "board %d lock %d still latched after unlock pulse %d", board, lock, attempt)
    return UnlockResult(board, lock, False, 2, state,
                        "latch still closed after 2 unlock pulses (jammed, or no lock power?)")
