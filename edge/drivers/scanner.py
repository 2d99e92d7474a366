"""A serial barcode/QR scanner in line mode: it types each code followed by a terminator.

One reader thread drains the port all the time, so a code scanned while nobody is asking
is dropped rather than delivered late to the next screen. Codes go to the consumer set by
start(consumer), like the camera QrScanner; they are never logged.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

import serial

from edge.drivers.qr import CodeConsumer, RepeatFilter
from edge.logs import get_logger

log = get_logger(__name__)

MAX_LINE_BYTES = 4096  # no code is this long: a port spewing noise must not grow a buffer


def parse_terminator(text: str) -> bytes:
    """A settings value such as "\\r", "\\r\\n", "CR", "LF", "CRLF", "TAB" as bytes."""
    named = {"CR": b"\r", "LF": b"\n", "CRLF": b"\r\n", "TAB": b"\t"}
    if text.upper() in named:
        return named[text.upper()]
    value = text.encode("latin-1").decode("unicode_escape").encode("latin-1")
    if not value:
        raise ValueError("scanner terminator must not be empty")
    return value


class SerialScanner:
    def __init__(self, url: str, *, baudrate: int = 9600, terminator: bytes = b"\r",
                 repeat_hold_s: float = 1.0, reopen_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not terminator:
            raise ValueError("scanner terminator must not be empty")
        self.url = url
        self._baudrate = baudrate
        self._terminator = terminator
        self._reopen_s = reopen_s
        self._repeats = RepeatFilter(repeat_hold_s)
        self._clock = clock
        self._consumer: CodeConsumer | None = None
        self._delivery = threading.RLock()
        self._closed = threading.Event()
        self._port: serial.SerialBase | None = None
        self._generation = 0  # bumped by start(); a line remembers the one it began in
        self._thread = threading.Thread(target=self._run, name="serial-scanner", daemon=True)
        self._thread.start()

    @property
    def scanning(self) -> bool:
        return self._consumer is not None

    @property
    def connected(self) -> bool:
        """The port is open (for diagnostics; a scanner says nothing until it scans)."""
        return self._port is not None

    def start(self, consumer: CodeConsumer) -> None:
        """Deliver codes scanned from now on; a line begun before this call is dropped."""
        with self._delivery:
            self._consumer = consumer
            self._repeats.reset()
            self._generation += 1

    def stop(self) -> None:
        with self._delivery:
            self._consumer = None

    def close(self) -> None:
        self.stop()
        self._closed.set()
        port = self._port
        if port is not None:
            port.cancel_read()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._closed.is_set():
            port = self._open()
            if port is None:
                self._closed.wait(self._reopen_s)
                continue
            try:
                self._read_lines(port)
            except (serial.SerialException, OSError) as exc:
                if not self._closed.is_set():
                    log.warning("scanner port failed; reopening", url=self.url, error=str(exc))
                    self._closed.wait(self._reopen_s)
            finally:
                self._port = None
                port.close()

    def _open(self) -> serial.SerialBase | None:
        try:
            port = serial.serial_for_url(self.url, baudrate=self._baudrate, timeout=0.5)
        except (serial.SerialException, OSError, ValueError) as exc:
            log.warning("scanner port did not open", url=self.url, error=str(exc))
            return None
        self._port = port
        return port

    def _read_lines(self, port: serial.SerialBase) -> None:
        buffer = bytearray()
        began_in = self._generation  # of the line in the buffer
        overflowing = False  # inside an over-long line: drop up to its terminator
        while not self._closed.is_set():
            chunk = port.read(max(1, port.in_waiting))
            if not chunk:
                continue
            now_in = self._generation
            if not buffer:
                began_in = now_in
            *lines, rest = bytes(buffer + chunk).split(self._terminator)
            buffer = bytearray(rest)
            if overflowing and lines:
                lines, overflowing = lines[1:], False
            if len(buffer) > MAX_LINE_BYTES:
                log.warning("scanner sent an over-long line; dropped", url=self.url)
                buffer.clear()
                overflowing = True
            for index, line in enumerate(lines):
                self._deliver(line, began_in if index == 0 else now_in)
            if lines:
                began_in = now_in  # the rest began in this chunk

    def _deliver(self, line: bytes, began_in: int) -> None:
        # Scanners configured for CRLF while we split on CR (or the reverse) leave stray
        # line-ends and spaces around the code: they are never part of it.
        code = line.strip(b"\r\n\t ")
        if not code:
            return
        if len(code) > MAX_LINE_BYTES:
            log.warning("scanner sent an over-long line; dropped", url=self.url)
            return
        try:
            text = code.decode("utf-8")
        except UnicodeDecodeError:
            log.warning("scanner sent bytes that are not UTF-8; dropped", url=self.url)
            return
        with self._delivery:
            consumer = self._consumer
            if (consumer is None or began_in != self._generation
                    or not self._repeats.fresh(text, self._clock())):
                return
            try:
                consumer(text)
            except Exception:
                log.exception("scanner consumer failed")
