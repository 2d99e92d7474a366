"""One owner for the lock-board port: an exclusive flock on <data_dir>/lockboard.lock.

The running controller holds it for as long as it owns the bus; `edge diag` takes it when
it is free and otherwise asks the controller over its local HTTP API. Two processes
writing frames on one RS-485 bus would garble each other's replies.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path


class BusBusy(Exception):
    """Another process owns the lock-board bus."""


class BusLock:
    """Owns the exclusive flock on the port lock file: taken, or BusBusy; released once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> "BusLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BusBusy(f"the lock-board bus is in use by another process (lock {self.path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "BusLock":
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def bus_lock_path(data_dir: Path) -> Path:
    return data_dir / "lockboard.lock"
