"""systemd's watchdog: READY=1 once started, then WATCHDOG=1 every WatchdogSec/2, but only
while the controller's health checks pass. A controller that is alive but stuck (database
locked, web server thread dead) stops petting the dog, and systemd restarts it.

A no-op when NOTIFY_SOCKET is unset (development, tests, not under systemd).
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping

import sdnotify
from sqlalchemy import text

from edge.logs import get_logger
from edge.storage import Database

log = get_logger(__name__)

DEFAULT_INTERVAL_S = 15.0  # half of WatchdogSec=30 in deploy/edge.service

HealthCheck = Callable[[], bool]


def database_answers(db: Database) -> HealthCheck:
    def check() -> bool:
        with db.read() as s:
            return s.execute(text("SELECT 1")).scalar() == 1

    return check


def thread_alive(thread: Callable[[], threading.Thread | None]) -> HealthCheck:
    """`thread()` returns the thread to watch (it may be created after the watchdog)."""
    def check() -> bool:
        current = thread()
        return current is not None and current.is_alive()

    return check


def http_answers(url: str, timeout_s: float = 3.0) -> HealthCheck:
    """The kiosk's web server answers (a wedged worker pool fails this, a live thread would not)."""
    import urllib.request

    def check() -> bool:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status == 200

    return check


class Watchdog:
    def __init__(self, checks: Mapping[str, HealthCheck], *,
                 interval_s: float | None = None) -> None:
        self._checks = dict(checks)
        self._interval_s = interval_s or _interval_from_systemd()
        self._notifier: sdnotify.SystemdNotifier | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if not os.environ.get("NOTIFY_SOCKET"):
            log.info("watchdog_off", reason="NOTIFY_SOCKET unset")
            return
        self._notifier = sdnotify.SystemdNotifier()
        self._notifier.notify("READY=1")
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._notifier is not None:
            self._notifier.notify("STOPPING=1")

    def beat(self) -> bool:
        """Run the checks once; pet the watchdog only if all pass. Returns whether it did."""
        failing = [name for name, check in self._checks.items() if not _passes(check)]
        if failing:
            log.warning("watchdog_withheld", failing=failing)
            if self._notifier is not None:
                self._notifier.notify(f"STATUS=unhealthy: {', '.join(failing)}")
            return False
        if self._notifier is not None:
            self._notifier.notify("WATCHDOG=1")
        return True

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.beat()


def _passes(check: HealthCheck) -> bool:
    try:
        return bool(check())
    except Exception:  # a check that crashes is a failing check, not a dead watchdog
        log.exception("watchdog_check_failed")
        return False


def _interval_from_systemd() -> float:
    usec = os.environ.get("WATCHDOG_USEC", "")
    return int(usec) / 2_000_000 if usec.isdigit() and int(usec) > 0 else DEFAULT_INTERVAL_S
