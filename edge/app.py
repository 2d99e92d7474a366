"""The composition root: everything the controller runs is built here, from Settings.

Nothing else in the code base constructs services, drivers or adapters from settings;
tests call `build_controller` with their own settings to get the same wiring.
"""
from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from edge.clock import Clock, SystemClock
from edge.logs import get_logger
from edge.settings import Settings
from edge.storage import Database

log = get_logger("edge.app")


class Component(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


@dataclass
class Controller:
    settings: Settings
    db: Database
    clock: Clock
    services: dict[str, Any] = field(default_factory=dict)  # domain services by name
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


def build_controller(settings: Settings, *, clock: Clock | None = None) -> Controller:
    db = Database(settings.database_path)
    db.upgrade()
    controller = Controller(settings=settings, db=db, clock=clock or SystemClock())
    _build_community(controller)
    return controller


def _build_community(controller: Controller) -> None:
    """Catalogue, residents, bookings, activities, requests, feedback. In simulate mode a
    demo platform key and, on an empty box, the demo catalogue (through replace())."""
    from zoneinfo import ZoneInfo

    from edge.community import (ActivityService, BookingService, CatalogueService,
                                FeedbackService, RequestService, ResidentDirectory)
    from edge.community.demo import demo_catalogue, ensure_demo_token_keys
    from edge.identity.tokens import ResidentTokenVerifier
    from edge.settings import SettingsError

    settings, db, clock = controller.settings, controller.db, controller.clock
    tz = ZoneInfo(settings.site.timezone)
    key_path = settings.identity.resident_token_public_key
    if key_path is None and settings.simulate:
        key_path = ensure_demo_token_keys(settings.keys_dir)
    try:
        verifier = ResidentTokenVerifier(key_path.read_bytes()) if key_path else None
    except (OSError, ValueError) as exc:
        raise SettingsError(f"bad setting identity.resident_token_public_key: {exc}") from None
    catalogue = CatalogueService(db, clock, tz)
    if settings.simulate and catalogue.is_empty():
        catalogue.replace(demo_catalogue(clock.now(), tz, settings.mqtt.site_id))
    controller.services.update(
        catalogue=catalogue,
        residents=ResidentDirectory(db, clock, settings.mqtt.site_id, verifier),
        bookings=BookingService(db, catalogue, clock),
        activities=ActivityService(db, catalogue, clock),
        requests=RequestService(db, clock, settings.community.emergency_callback_minutes),
        feedback=FeedbackService(db, catalogue, clock),
    )


def serve(controller: Controller) -> None:
    """Run until SIGTERM or SIGINT: components, then the local web app in this thread."""
    from waitress.server import create_server

    from edge.kiosk_ui import create_app

    settings = controller.settings
    app = create_app(controller)
    server = create_server(app, host=settings.http.host, port=settings.http.port,
                           threads=settings.http.threads)
    controller.start()

    def _shutdown(signum: int, _frame: object) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        server.close()

    signal.signal(signal.SIGTERM, _shutdown)
    signal.signal(signal.SIGINT, _shutdown)
    address = f"http://{settings.http.host}:{server.effective_port}/"
    log.info("serving", url=address, simulate=settings.simulate, data_dir=str(settings.data_dir))
    print(f"edge controller ready at {address}", flush=True)
    try:
        server.run()
    except OSError:  # the listening socket was closed by _shutdown
        pass
    finally:
        controller.stop()
