"""Lock-board buses. The domain holds a LockBoardBus; this module builds one from settings."""
from __future__ import annotations

from typing import Any

from .base import (
    LOCKS_PER_BOARD,
    UNKNOWN_LOCK,
    BoardStatus,
    BusError,
    Latch,
    LockBoardBus,
    LockState,
    UnlockResult,
)
from .kerong import REPLY_TIMEOUT_S, KerongBus, KerongSettings
from .modbus import LineCounters, ModbusBus, ModbusSettings

__all__ = [
    "LOCKS_PER_BOARD",
    "UNKNOWN_LOCK",
    "BoardStatus",
    "BusError",
    "KerongBus",
    "KerongSettings",
    "Latch",
    "LockBoardBus",
    "LineCounters",
    "LockState",
    "ModbusBus",
    "ModbusSettings",
    "UnlockResult",
    "open_lockboard_bus",
]


def open_lockboard_bus(
    url: str,
    *,
    boards: list[int] | int,
    closed_bit: int = 1,
    baudrate: int = 19200,
    reply_timeout_s: float = REPLY_TIMEOUT_S,
    unlock_gap_s: float = 0.1,
    rs485_rts: bool = False,
    protocol: str = "kerong",
    **tuning: Any,
) -> LockBoardBus:
    """Open a Kerong KR-CU16 bus, or with protocol="modbus" a bus of Modbus RTU relay boards.

    `url` is anything pyserial's serial_for_url takes: /dev/ttyUSB0, a PTY path, or
    socket://127.0.0.1:PORT. `boards` lists the board addresses, or gives their count
    (3 means boards 0, 1 and 2). `tuning` takes the other KerongSettings fields
    (status_attempts, echo_window_s, confirm_window_s, confirm_poll_s, scan_window_s), or
    for Modbus the other ModbusSettings fields (units, pulse_s, coil_base, input_base,
    item_sensors, status_attempts, confirm_window_s, confirm_poll_s).
    Raises ValueError for bad settings and BusError for a URL the port can never accept;
    a device that is merely absent is retried on every call.
    """
    board_list = tuple(range(boards)) if isinstance(boards, int) else tuple(boards)
    if protocol not in ("kerong", "modbus"):
        raise ValueError(f"lock-board protocol must be kerong or modbus, not {protocol!r}")
    if protocol == "modbus":
        if "units" in tuning:
            tuning["units"] = tuple(tuning["units"])
        return ModbusBus(ModbusSettings(url=url, boards=board_list, closed_bit=closed_bit, baudrate=baudrate,
                                        reply_timeout_s=reply_timeout_s, unlock_gap_s=unlock_gap_s,
                                        rs485_rts=rs485_rts, **tuning))
    settings = KerongSettings(
        url=url,
        boards=board_list,
        closed_bit=closed_bit,
        baudrate=baudrate,
        reply_timeout_s=reply_timeout_s,
        unlock_gap_s=unlock_gap_s,
        rs485_rts=rs485_rts,
        **tuning,
    )
    return KerongBus(settings)
