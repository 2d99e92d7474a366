"""The one thread that owns a serial port and runs exchanges on it one at a time.

An exchange is a function given the open port: it writes a request and reads what it
needs, and nothing else touches the port meanwhile. Callers queue exchanges and block on
a future. Paced exchanges (solenoid pulses) start no sooner than `gap_s` after the previous
paced one ended; unpaced ones (status reads) queued behind a waiting paced one go first, so
the gap never delays a read.

A port failure (unplugged adapter, closed PTY, dropped socket) fails only the exchange that
met it, with a BusError; the port is dropped and reopened by the next exchange.
"""
from __future__ import annotations

import logging
import termios
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, TypeVar

import serial
import serial.rs485

from .base import BusError

log = logging.getLogger("edge.drivers.lockboard")

T = TypeVar("T")
Exchange = Callable[[serial.SerialBase], T]

# termios.error is not an OSError: pyserial lets it through from tcflush on a hung-up tty.
PORT_FAILURES = (serial.SerialException, OSError, termios.error)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, termios.error) and len(exc.args) == 2:
        return f"[Errno {exc.args[0]}] {exc.args[1]}"  # its str() is a bare tuple
    return str(exc)


@dataclass
class _Job:
    exchange: Exchange[Any]
    paced: bool
    future: Future[Any] = field(default_factory=Future)


class PortOwner:
    def __init__(self, name: str, opener: Callable[[], serial.SerialBase], *,
                 gap_s: float, call_timeout_s: float) -> None:
        self._name = name
        self._opener = opener
        self._gap_s = gap_s
        self._call_timeout_s = call_timeout_s
        self._port: serial.SerialBase | None = None
        self._jobs: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._next_paced_at = 0.0
        self._thread = threading.Thread(target=self._run, name=f"lockboard-port {name}", daemon=True)
        self._thread.start()

    def call(self, exchange: Exchange[T], *, paced: bool = False) -> T:
        """Run an exchange on the owner thread and return its result (or raise its error)."""
        job = _Job(exchange, paced)
        with self._cond:
            if self._closing:
                raise BusError(f"lock-board bus {self._name} is closed")
            self._jobs.append(job)
            self._cond.notify()
        try:
            return job.future.result(timeout=self._call_timeout_s)
        except FutureTimeout:
            job.future.cancel()
            raise BusError(
                f"lock-board bus {self._name} gave no result within {self._call_timeout_s:g} s"
            ) from None

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        while (job := self._next_job()) is not None:
            if not job.future.set_running_or_notify_cancel():
                continue  # its caller gave up waiting
            try:
                job.future.set_result(self._execute(job.exchange))
            except Exception as exc:  # noqa: BLE001 - handed to the caller, the thread lives on
                job.future.set_exception(exc)
            finally:
                if job.paced:
                    with self._cond:
                        self._next_paced_at = time.monotonic() + self._gap_s
        self._shut_down()

    def _next_job(self) -> _Job | None:
        with self._cond:
            while not self._closing:
                now = time.monotonic()
                for job in self._jobs:
                    if not job.paced or now >= self._next_paced_at:
                        self._jobs.remove(job)
                        return job
                self._cond.wait(self._next_paced_at - now if self._jobs else None)
            return None

    def _execute(self, exchange: Exchange[T]) -> T:
        port = self._port or self._open()
        try:
            return exchange(port)
        except PORT_FAILURES as exc:
            self._drop_port()
            message = f"lock-board port {self._name} failed: {_reason(exc)}"
            log.error(message)
            raise BusError(f"{message} (will reopen on the next call)") from exc

    def _open(self) -> serial.SerialBase:
        try:
            self._port = self._opener()
        except (ValueError, *PORT_FAILURES) as exc:
            raise BusError(f"cannot open lock-board port {self._name}: {_reason(exc)}") from exc
        log.info("lock-board port %s open", self._name)
        return self._port

    def _drop_port(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            except PORT_FAILURES as exc:
                log.debug("closing failed port %s: %s", self._name, exc)
            self._port = None

    def _shut_down(self) -> None:
        with self._cond:
            pending, self._jobs = list(self._jobs), deque()
        for job in pending:
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(BusError(f"lock-board bus {self._name} closed"))
        self._drop_port()


def open_rs485_port(url: str, baudrate: int, reply_timeout_s: float, rs485_rts: bool) -> serial.SerialBase:
    """A lock-board line, 8N1, exclusive: any pyserial URL (device, PTY, socket://)."""
    port = serial.serial_for_url(url, baudrate=baudrate, bytesize=serial.EIGHTBITS,
                                 parity=serial.PARITY_NONE, stopbits=serial.STOPBITS_ONE,
                                 timeout=reply_timeout_s, exclusive=True, do_not_open=True)
    if rs485_rts:
        port.rs485_mode = serial.rs485.RS485Settings(rts_level_for_tx=True, rts_level_for_rx=False)
    port.open()
    return port


def open_at_start(owner: PortOwner) -> None:
    """Fail now on a setting the port can never accept; a missing device may still come."""
    try:
        owner.call(lambda port: None)
    except BusError as exc:
        if isinstance(exc.__cause__, ValueError):
            owner.close()
            raise
        log.warning("%s; every call will try to open it again", exc)
