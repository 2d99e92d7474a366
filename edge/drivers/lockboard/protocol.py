"""Kerong KR-CU16 frames: pure encoding, decoding and stream splitting, no I/O.

Requests are 5 bytes `STX ADDR CMD ETX SUM`; replies are 9 bytes
`STX ADDR CMD L1 L2 I1 I2 ETX SUM`. SUM is the low byte of the sum of every byte before it.
Latch and item bits are returned raw here: which bit value means "closed" is a bus
setting the driver applies.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

STX = 0x02
ETX = 0x03
REQUEST_LEN = 5
REPLY_LEN = 9
MAX_BOARD = 15
MAX_LOCK_INDEX = 15
BUS_QUERY_ADDR = 0xF0


class Cmd(enum.IntEnum):
    STATUS = 0x30
    UNLOCK = 0x31
    QUERY_BUS = 0x32
    UNLOCK_BOARD = 0x33
    STATUS_REPLY = 0x35
    QUERY_REPLY = 0x36


class FrameError(ValueError):
    """Bytes that are not a well-formed frame of the expected kind."""


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def address(board: int, lock: int = 0) -> int:
    if not 0 <= board <= MAX_BOARD:
        raise ValueError(f"board {board} is outside 0-{MAX_BOARD}")
    if not 0 <= lock <= MAX_LOCK_INDEX:
        raise ValueError(f"lock {lock} is outside 0-{MAX_LOCK_INDEX}")
    return board << 4 | lock


def _seal(body: bytes) -> bytes:
    framed = bytes((STX, *body, ETX))
    return framed + bytes((checksum(framed),))


def encode_request(cmd: Cmd, board: int, lock: int = 0) -> bytes:
    return _seal(bytes((address(board, lock), cmd)))


def status_request(board: int) -> bytes:
    return encode_request(Cmd.STATUS, board)


def unlock_request(board: int, lock: int) -> bytes:
    return encode_request(Cmd.UNLOCK, board, lock)


def unlock_board_request(board: int) -> bytes:
    return encode_request(Cmd.UNLOCK_BOARD, board)


BUS_QUERY = _seal(bytes((BUS_QUERY_ADDR, Cmd.QUERY_BUS)))


def is_framed(frame: bytes, length: int) -> bool:
    """STX, ETX, length and SUM are right; says nothing about the content."""
    return (
        len(frame) == length
        and frame[0] == STX
        and frame[-2] == ETX
        and frame[-1] == checksum(frame[:-1])
    )


def _check_framing(frame: bytes, length: int) -> None:
    if not is_framed(frame, length):
        raise FrameError(f"not a {length}-byte frame with valid STX/ETX/SUM: {frame.hex(' ')}")


@dataclass(frozen=True)
class Request:
    board: int
    lock: int
    cmd: int


def decode_request(frame: bytes) -> Request:
    _check_framing(frame, REQUEST_LEN)
    addr = frame[1]
    return Request(board=addr >> 4, lock=addr & 0x0F, cmd=frame[2])


@dataclass(frozen=True)
class Reply:
    board: int
    cmd: Cmd
    latches: int  # bit i = lock i, raw bit value as the board sent it
    items: int  # bit i = item sensor of lock i, set = something inside


def encode_reply(cmd: Cmd, board: int, latches: int, items: int) -> bytes:
    body = bytes((address(board), cmd, latches & 0xFF, latches >> 8 & 0xFF, items & 0xFF, items >> 8 & 0xFF))
    return _seal(body)


def decode_reply(frame: bytes) -> Reply:
    _check_framing(frame, REPLY_LEN)
    addr, cmd, l1, l2, i1, i2 = frame[1:7]
    if addr & 0x0F:
        raise FrameError(f"reply address {addr:#04x} carries a lock nibble: {frame.hex(' ')}")
    if cmd not in (Cmd.STATUS_REPLY, Cmd.QUERY_REPLY):
        raise FrameError(f"reply command {cmd:#04x} is not a status reply: {frame.hex(' ')}")
    return Reply(board=addr >> 4, cmd=Cmd(cmd), latches=l1 | l2 << 8, items=i1 | i2 << 8)


class FrameParser:
    """Splits a byte stream into well-framed frames of one length.

    After garbage (stray bytes such as 0xFB, a torn or corrupted frame) it resynchronises
    on the next STX, so one bad byte never costs the good frame that follows it.
    """

    def __init__(self, frame_len: int) -> None:
        self._frame_len = frame_len
        self._buf = bytearray()
        self.discarded = 0  # bytes thrown away while resynchronising

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        frames: list[bytes] = []
        while True:
            start = self._buf.find(STX)
            if start < 0:
                self._drop(len(self._buf))
                return frames
            self._drop(start)
            if len(self._buf) < self._frame_len:
                return frames
            candidate = bytes(self._buf[: self._frame_len])
            if is_framed(candidate, self._frame_len):
                frames.append(candidate)
                del self._buf[: self._frame_len]
            else:
                self._drop(1)  # a false STX: look for the next one inside the candidate

    def _drop(self, count: int) -> None:
        del self._buf[:count]
        self.discarded += count
