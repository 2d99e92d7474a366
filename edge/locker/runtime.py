"""The locker's running parts as one controller component: reconcile at start, then the
door monitor and the minute jobs; on stop, everything released in reverse (bus last)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from edge.drivers.lockboard.base import LockBoardBus
from edge.locker.buslock import BusLock
from edge.locker.monitor import DoorMonitor, LockerJobs
from edge.locker.service import LockerService
from edge.logs import get_logger
from edge.storage import StorageFull

log = get_logger("edge.locker")


@dataclass
class LockerRuntime:
    """Owns the locker's running parts and their order: reconcile, monitor, jobs; the bus last."""

    service: LockerService
    bus: LockBoardBus
    bus_lock: BusLock
    monitor: DoorMonitor
    jobs: LockerJobs
    # Things built only for this runtime (a simulator, GPIO), closed after the bus.
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def start(self) -> None:
        try:
            self.service.reconcile()
            self.service.check_retention()
        except StorageFull:
            # The doors must still be watched: changes not recorded now are seen again by
            # the monitor's next reads and recorded once the outbox has room.
            log.exception("locker_reconcile_refused_storage_full")
        self.monitor.start()
        self.jobs.start()

    def stop(self) -> None:
        self.jobs.stop()
        self.monitor.stop()
        self.release()

    def release(self) -> None:
        """Close the bus and let go of the port lock (also for a runtime never started)."""
        self.bus.close()
        self.bus_lock.release()
        for cleanup in reversed(self.cleanups):
            cleanup()
        self.cleanups.clear()
