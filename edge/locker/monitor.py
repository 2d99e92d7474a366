"""The threads that keep the locker's picture true: door polling and the minute jobs."""
from __future__ import annotations

import threading

from apscheduler.schedulers.background import BackgroundScheduler

from edge.locker.doors import Doors
from edge.locker.service import LockerService
from edge.logs import get_logger

log = get_logger("edge.locker.monitor")


class DoorMonitor:
    """Owns polling: reads every board each `interval_s` and hands the reads to the shared
    door state, which diffs them against what it last saw (door.opened / door.closed,
    deposits, pickups), then runs the left-open check."""

    def __init__(self, doors: Doors, interval_s: float) -> None:
        self._doors = doors
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="door-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # one bad pass (disk full, odd reply) must not end door watching
                log.exception("door_poll_failed")
            self._stop.wait(self._interval_s)

    def poll_once(self) -> None:
        """One pass: read every board, apply what changed, then the left-open timer. A read
        that overlapped an unlock (the generation moved on) is dropped by the door state."""
        for board in self._doors.boards:
            generation = self._doors.generation
            self._doors.apply_board_status(self._doors.read(board), generation)
        self._doors.check_doors_left_open()


class LockerJobs:
    """Every minute: retention (parcel.overdue) and abandoned deposits."""

    def __init__(self, service: LockerService, every_s: float = 60) -> None:
        self._service = service
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._scheduler.add_job(self.run_once, "interval", seconds=every_s, id="locker-minute",
                                max_instances=1, coalesce=True)

    def run_once(self) -> None:
        try:
            self._service.check_retention()
            self._service.expire_abandoned_deposits()
        except Exception:
            log.exception("locker_jobs_failed")

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
