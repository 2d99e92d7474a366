"""What the composition root (edge/app.py) fills in: the Controller, its typed Services and,
in simulate mode only, the Simulation it runs alongside.

Adapters (kiosk, JSON API, bridge, `edge diag`) and tests read services as attributes; a part
this box does not have is None. This module imports no part at run time, so any adapter can
name these types without pulling the composition root (and its imports) in.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from edge.clock import Clock
from edge.logs import get_logger
from edge.settings import Settings
from edge.storage import Database

if TYPE_CHECKING:
    from cloud_bridge import Bridge, CommandRouter
    from edge.community import (ActivityService, BookingService, CatalogueService,
                                FeedbackService, RequestService, ResidentDirectory)
    from edge.drivers.camera import StationCamera
    from edge.drivers.gpio import StationIO
    from edge.identity.otp import OneTimeCodes
    from edge.identity.service import IrisService
    from edge.live import LiveHub, ScanSource
    from edge.locker.diagnostics import LockerDiagnostics
    from edge.locker.service import LockerService
    from edge.ops.nightly import NightlyBackup
    from edge.simulation import Simulation

log = get_logger("edge.controller")


class Component(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


@dataclass
class Services:
    """The domain services and the drivers adapters use; None where this box lacks the part."""

    locker: LockerService | None = None
    locker_diagnostics: LockerDiagnostics | None = None
    station_io: StationIO | None = None  # presence sensor, buzzer, light
    catalogue: CatalogueService | None = None
    residents: ResidentDirectory | None = None
    bookings: BookingService | None = None
    activities: ActivityService | None = None
    requests: RequestService | None = None
    feedback: FeedbackService | None = None
    qr_scanner: ScanSource | None = None  # camera or serial scanner; runs while a screen waits
    iris: IrisService | None = None
    otp: OneTimeCodes | None = None  # one-time identity codes by SMS (HIGH assurance)
    bridge: Bridge | None = None
    command_router: CommandRouter | None = None  # later parts register their cloud commands on it
    nightly_backup: NightlyBackup | None = None
    live: LiveHub | None = None  # wakes the kiosk's open pages when a service changes
    voice_notes: Any = None  # VoiceNoteService: clips on help/emergency requests (ADR 0128)
    station_camera: StationCamera | None = None  # the camera covering the locker (send-outs need it)


@dataclass
class Controller:
    settings: Settings
    db: Database
    clock: Clock
    services: Services = field(default_factory=Services)
    simulation: Simulation | None = None  # simulated devices; only in simulate mode
    components: list[Component] = field(default_factory=list)  # started in order, stopped reversed
    _stopped: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        for component in self.components:
            component.start()

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        for component in reversed(self.components):
            try:
                component.stop()
            except Exception:  # keep stopping the rest: a stuck part must not hold the others
                log.exception("component_stop_failed", component=type(component).__name__)
        self.db.dispose()

