"""What wakes the kiosk's open pages (edge/kiosk_ui/screens/live.py streams them, ADR 0062):
a version number that changes with the services, presence near the screen, and the last
QR scan. No Flask here: the composition root builds the hub and subscribes it to the
services, and the kiosk only reads it."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

PRESENCE_HOLD_S = 5.0  # someone seen this recently still counts as present
SCAN_FRESH_S = 30.0  # a scanner reading older than this is not claimed by anybody


class ScanSource(Protocol):
    """A QR camera scanner or a serial scanner (edge.drivers.qr / edge.drivers.scanner)."""

    def start(self, consumer: Callable[[str], None]) -> None: ...
    def stop(self) -> None: ...


class LiveHub:
    """Wakes every open stream when something changed; holds presence and the last scan."""

    def __init__(self, scan_source: ScanSource | None = None) -> None:
        self._changed = threading.Condition()
        self._version = 0
        self._presence_at = float("-inf")
        self._scan: tuple[str, float] | None = None
        self._closed = False
        self._scan_source = scan_source
        self._scan_watchers = 0
        self._scan_lock = threading.Lock()  # start/stop in the order watchers come and go

    def start(self) -> None:
        """Nothing to start; the hub is a controller component so that stop() ends streams."""

    def stop(self) -> None:
        """Ends every open stream now, so shutdown does not wait for their next beat."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def notify(self, *_event: Any) -> None:
        with self._changed:
            self._version += 1
            self._changed.notify_all()

    def presence_seen(self) -> None:
        self._presence_at = time.monotonic()
        self.notify()

    def present(self) -> bool:
        return time.monotonic() - self._presence_at < PRESENCE_HOLD_S

    def scanned(self, code: str) -> None:
        """A QR reading from the scanner; the page waiting for a scan claims it."""
        self._scan = (code, time.monotonic())
        self.notify()

    @contextmanager
    def watching_scan(self) -> Iterator[None]:
        """While a page waits for a scan (its stream is open on the scan topic), the scanner
        reads; when the last such page goes away, it stops (the camera is left alone)."""
        with self._scan_lock:
            self._scan_watchers += 1
            if self._scan_watchers == 1 and self._scan_source is not None:
                self._scan_source.start(self.scanned)
        try:
            yield
        finally:
            with self._scan_lock:
                self._scan_watchers -= 1
                if self._scan_watchers == 0 and self._scan_source is not None:
                    self._scan_source.stop()

    def scan_waiting(self) -> bool:
        return self._scan is not None and time.monotonic() - self._scan[1] < SCAN_FRESH_S

    def take_scan(self) -> str | None:
        scan, self._scan = self._scan, None
        if scan is None or time.monotonic() - scan[1] >= SCAN_FRESH_S:
            return None
        return scan[0]

    def wait(self, version: int, timeout: float) -> int:
        with self._changed:
            if self._version == version:
                self._changed.wait(timeout)
            return self._version
