"""The composition root: everything the controller runs is built here, from Settings.

Nothing else in the code base constructs services, drivers or adapters from settings;
tests call `build_controller` with their own settings to get the same wiring, and
`edge diag` opens the locker through `local_locker_diagnostics`. Simulate mode's devices
and demo data come from one `Simulation` (edge/simulation.py), built only in simulate mode.
"""
from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from edge.app_ops import (  # noqa: F401  (_Every re-exported: it lived here)
    _build_operations,
    _build_records,
    _build_voice_notes,
    _Every,
    _station_camera,
)
from edge.clock import Clock, SystemClock
from edge.controller import Component, Controller, Services
from edge.logs import get_logger
from edge.settings import Settings
from edge.simulation import Simulation
from edge.storage import Database
from edge.wiring import (
    ClosingDriver,
    build_camera,
    configured_camera,
    configured_scanner,
    iris_illuminator,
    request_update_handler,
)
from edge.wiring import door_alarm as _door_alarm  # old names: build_locker calls these
from edge.wiring import platform_sealer as _platform_sealer
from edge.wiring import station_io_for as _station_io

if TYPE_CHECKING:
    from flask import Flask

    from edge.drivers.gpio import StationIO
    from edge.locker.diagnostics import LockerDiagnostics
    from edge.locker.runtime import LockerRuntime

__all__ = ["Component", "Controller", "Services", "Simulation", "build_camera", "build_controller",
           "build_web_app", "local_locker_diagnostics", "serve"]

log = get_logger("edge.app")


def build_controller(settings: Settings, *, clock: Clock | None = None) -> Controller:
    from cloud_bridge.config import apply_stored_overrides

    db = Database(settings.database_path)
    db.upgrade()
    settings = apply_stored_overrides(settings, db)  # what the cloud set with config.set
    controller = Controller(settings=settings, db=db, clock=clock or SystemClock(),
                            simulation=Simulation() if settings.simulate else None)
    if controller.simulation is not None:
        controller.simulation.use_platform_key(settings)
    _build_community(controller)  # first: the locker files parcels by the residents' phone hash
    build_locker(controller)
    _build_identity(controller)
    _build_bridge(controller)
    _build_live(controller)
    _build_operations(controller)
    _build_records(controller)
    return controller


@contextmanager
def local_locker_diagnostics(settings: Settings) -> Iterator[LockerDiagnostics]:
    """The locker's diagnostics over a bus this process opens itself (`edge diag` while no
    controller runs); bus and port lock released on exit. Raises BusBusy when another
    process owns the bus, LookupError when this box has no locker."""
    db = Database(settings.database_path)
    try:
        db.upgrade()
        controller = Controller(settings=settings, db=db, clock=SystemClock(),
                                simulation=Simulation() if settings.simulate else None)
        runtime = build_locker(controller)
        if runtime is None or controller.services.locker_diagnostics is None:
            raise LookupError("no lock-board bus is configured (set locker.serial_url)")
        try:
            yield controller.services.locker_diagnostics
        finally:
            runtime.release()
    finally:
        db.dispose()


def build_locker(controller: Controller) -> LockerRuntime | None:
    """The parcel locker: bus (or, in simulate mode, an in-process simulator on a PTY),
    buzzer, key files, service, door monitor and minute jobs; its runtime, also appended
    to the components. No serial URL and no --simulate: this box has no locker (None).
    Raises BusBusy when another process owns the bus."""
    from functools import partial

    from edge.community.residents import phone_hash
    from edge.drivers.lockboard import BusError, open_lockboard_bus
    from edge.identity.keys import load_or_create_key
    from edge.identity.tokens import PickupTokenCodec
    from edge.locker.buslock import BusLock, bus_lock_path
    from edge.locker.diagnostics import LockerDiagnostics
    from edge.locker.monitor import DoorMonitor, LockerJobs
    from edge.locker.views import Station
    from edge.locker.runtime import LockerRuntime
    from edge.locker.service import LockerService
    from edge.settings import SettingsError

    settings, locker, simulation = controller.settings, controller.settings.locker, controller.simulation
    if locker.serial_url is None and simulation is None:
        log.info("no_locker", why="locker.serial_url is not set")
        return None
    bus_lock = BusLock(bus_lock_path(settings.data_dir)).acquire()
    cleanups: list[Any] = [bus_lock.release]
    try:
        url = locker.serial_url
        if url is None and simulation is not None:
            url = simulation.start_lockboard(locker)
            assert simulation.lockboard is not None
            cleanups.append(simulation.lockboard.stop)
        try:
            bus = open_lockboard_bus(url, boards=locker.boards, closed_bit=locker.closed_bit,
                                     baudrate=locker.baudrate, reply_timeout_s=locker.reply_timeout_s,
                                     unlock_gap_s=locker.unlock_gap_s, rs485_rts=locker.rs485_rts,
                                     **locker.bus_options())
        except BusError as exc:  # a URL no port can ever take; an absent device is retried
            raise SettingsError(f"bad setting locker.serial_url (EDGE_LOCKER__SERIAL_URL): {exc}") from None
        from edge.ops.metrics import CountingBus

        bus = CountingBus(bus)  # bus errors and timeouts per board, for /metrics
    except Exception:
        for cleanup in reversed(cleanups):
            cleanup()
        raise
    cleanups.remove(bus_lock.release)
    station_io = _station_io(controller, cleanups)
    secret = load_or_create_key(settings.keys_dir / "pickup_code.key", 32)
    tokens = PickupTokenCodec(load_or_create_key(settings.keys_dir / "pickup_token.key", 32))
    if simulation is not None and not locker.couriers:
        from edge.simulation import DEMO_COURIERS

        locker.couriers = dict(DEMO_COURIERS)
    # The live settings object, not a copy: config.set changes thresholds in place.
    residents = controller.services.residents
    service = LockerService(
        db=controller.db, bus=bus, layout=locker.layout(), clock=controller.clock, box_secret=secret,
        pickup_tokens=tokens, alarm=_door_alarm(station_io), settings=locker,
        phone_hash=partial(phone_hash, settings.mqtt.site_id),
        resident_phone_hash=residents.phone_hash_of if residents is not None else None,
        seal_secret=_platform_sealer(settings),
        station=Station(settings.site.station_name, settings.site.address),
        camera_check=_station_camera(controller).problem)
    if simulation is not None:
        simulation.attach_demo_hand(service)
    controller.services.locker = service
    controller.services.locker_diagnostics = LockerDiagnostics(service, bus, controller.db,
                                                               settings.keys_dir)
    runtime = LockerRuntime(service, bus, bus_lock, DoorMonitor(service.doors, locker.poll_interval_s),
                            LockerJobs(service), cleanups)
    controller.components.append(runtime)
    return runtime


def _build_community(controller: Controller) -> None:
    """Catalogue, residents, bookings, activities, requests, feedback. In simulate mode a
    demo platform key and, on an empty box, the demo catalogue (through replace())."""
    from zoneinfo import ZoneInfo

    from edge.community import (ActivityService, BookingService, CatalogueService,
                                FeedbackService, RequestService, ResidentDirectory)
    from edge.handoffs import resident_token_check
    from edge.identity.tokens import ResidentTokenVerifier
    from edge.settings import SettingsError

    settings, db, clock, simulation = controller.settings, controller.db, controller.clock, controller.simulation
    tz = ZoneInfo(settings.site.timezone)
    key_path = settings.identity.resident_token_public_key
    if key_path is None and simulation is not None:
        key_path = simulation.resident_token_public_key(settings.keys_dir)
    try:
        verifier = ResidentTokenVerifier(key_path.read_bytes()) if key_path else None
    except (OSError, ValueError) as exc:
        raise SettingsError(f"bad setting identity.resident_token_public_key: {exc}") from None
    catalogue = CatalogueService(db, clock, tz)
    if simulation is not None:
        simulation.seed_catalogue(catalogue, clock.now(), tz, settings.mqtt.site_id)
    services = controller.services
    services.catalogue = catalogue
    services.residents = ResidentDirectory(db, clock, settings.mqtt.site_id,
                                           resident_token_check(verifier) if verifier else None)
    services.bookings = BookingService(db, catalogue, clock)
    services.activities = ActivityService(db, catalogue, clock)
    services.requests = RequestService(db, clock, settings.community.emergency_callback_minutes)
    services.feedback = FeedbackService(db, catalogue, clock)
    _build_voice_notes(controller)


def _build_identity(controller: Controller) -> None:
    """QR source (camera or serial scanner; kiosk screens start and stop it while they wait
    for a scan), iris camera and IrisService, and the link from a resident to the phone hash
    their parcels are filed under. Simulate mode: simulated cameras where none is set."""
    from edge.drivers.qr import QrScanner
    from edge.identity.service import IrisService
    from edge.identity.templates import TemplateCipher

    settings, services, simulation = controller.settings, controller.services, controller.simulation
    identity = settings.identity
    scanner, iris_camera = configured_scanner(settings), configured_camera(settings, "iris")
    if simulation is not None:
        simulation.add_cameras(want_qr=scanner is None, want_iris=iris_camera is None)
        if scanner is None and simulation.qr_camera is not None:
            scanner = QrScanner(simulation.qr_camera)
        iris_camera = iris_camera or simulation.iris_camera
    if scanner is not None:
        services.qr_scanner = scanner
        controller.components.append(ClosingDriver(scanner))
    key_file = identity.iris_key_file or settings.keys_dir / "iris.key"
    iris = IrisService(controller.db, controller.clock, TemplateCipher.from_key_file(key_file),
                       iris_camera, station=settings.mqtt.device_id,
                       illuminator=iris_illuminator(settings, iris_camera))
    services.iris = iris
    controller.components.append(iris)
    _build_one_time_codes(controller)


def _build_one_time_codes(controller: Controller) -> None:
    """One-time identity codes (ADR 0115): an HMAC key file of their own, and the platform's
    key to seal each code to (without it, codes by SMS are not offered)."""
    from edge.identity.keys import load_or_create_key
    from edge.identity.otp import OneTimeCodes
    from edge.storage.attempts import AttemptPolicy

    settings = controller.settings
    identity = settings.identity
    controller.services.otp = OneTimeCodes(
        controller.db, controller.clock, load_or_create_key(settings.keys_dir / "otp.key", 32),
        _platform_sealer(settings, warn=False),
        AttemptPolicy(identity.otp_attempt_limit, identity.otp_window_s, identity.otp_cooldown_s))


def _build_bridge(controller: Controller) -> None:
    """The cloud bridge, with a command handler for each service that exists. In simulate
    mode with no broker configured (and Mosquitto installed), a private broker and the
    reference cloud peer run alongside, so the whole loop works on a laptop."""
    from importlib.metadata import PackageNotFoundError, version

    from cloud_bridge import Bridge, CommandRouter, ConfigCommand
    from cloud_bridge.commands import ping_handler
    from edge.handoffs import maintenance_remote, open_remote
    from edge.station_checks import diag_run_handler
    from edge.storage import outbox

    settings, db, clock, services = controller.settings, controller.db, controller.clock, controller.services
    with db.write() as session:
        outbox.set_budget(session, max_rows=settings.outbox.max_pending_rows,
                          max_bytes=settings.outbox.max_pending_bytes)
    if controller.simulation is not None and not settings.mqtt.host:
        seeded = services.catalogue is not None and not services.catalogue.is_empty()
        controller.components += controller.simulation.start_cloud(settings, box_has_catalogue=seeded)
    try:
        software = version("community-station-edge")
    except PackageNotFoundError:
        software = "0+unknown"
    router = CommandRouter(db, clock)
    services.command_router = router  # later parts register their commands too
    router.register("ping", ping_handler(software), in_transaction=True)
    router.register("config.set", ConfigCommand(settings), in_transaction=True)
    router.register("diag.run", diag_run_handler(controller))  # a self-test asked by the cloud
    catalogue, bookings, locker = services.catalogue, services.bookings, services.locker
    if catalogue is not None:
        router.register("catalogue.sync", catalogue.replace)
    if bookings is not None:
        router.register("booking.decision", lambda data: bookings.decide(
            data["booking_id"], data["decision"] == "approved", data.get("reason")))
    if locker is not None:
        router.register("locker.open", lambda data: open_remote(locker, data))
        router.register("compartment.maintenance", lambda data: maintenance_remote(locker, data))
    if services.requests is not None:
        router.register("request.update", request_update_handler(services.requests))
    if services.iris is not None:
        iris = services.iris
        router.register("iris.revoke", lambda data: {"deleted": iris.revoke_by_platform(
            data["resident_id"], data["operator"], data["reason"])})
    bridge = Bridge(settings, db, router, clock=clock, version=software,
                    compartments=locker.snapshot if locker is not None else None)
    if locker is not None:
        locker.subscribe(bridge.compartments_changed)
    from cloud_bridge.replay import OutboxReplay

    router.register("outbox.replay", OutboxReplay(db, bridge))
    services.bridge = bridge
    controller.components.append(bridge)


def _build_live(controller: Controller) -> None:
    """The kiosk's live hub: open pages wake when the locker or a booking changes, the
    screen saver wakes on presence, and a scan reaches the page waiting for it."""
    from edge.live import LiveHub

    services = controller.services
    live = services.live = LiveHub(services.qr_scanner)
    controller.components.append(live)
    for source in (services.locker, services.bookings, services.requests):
        if source is not None:
            source.subscribe(live.notify)
    if services.station_io is not None:
        services.station_io.on_presence(live.presence_seen)


def attach_station_io(controller: Controller, station_io: StationIO) -> None:
    """GPIO built outside (tests with their own pins): the locker's alarm is already wired,
    so only the parts that listen to presence are attached here."""
    controller.services.station_io = station_io
    if controller.services.live is not None:
        station_io.on_presence(controller.services.live.presence_seen)


def build_web_app(controller: Controller) -> Flask:
    """The local web app (kiosk screens and JSON API) over this controller's services."""
    from edge.kiosk_ui import create_app

    return create_app(controller)


def serve(controller: Controller) -> None:
    """Run until SIGTERM or SIGINT: components, then the local web app in this thread."""
    from waitress.server import create_server

    from edge.watchdog import Watchdog, database_answers, http_answers

    settings = controller.settings
    app = build_web_app(controller)
    server = create_server(app, host=settings.http.host, port=settings.http.port,
                           threads=settings.http.threads)
    address = f"http://{settings.http.host}:{server.effective_port}/"
    # Last, so READY=1 is sent only once everything else has started.
    controller.components.append(Watchdog({
        "database": database_answers(controller.db),
        "http": http_answers(address + "healthz"),
    }))
    controller.start()

    def _shutdown(signum: int, _frame: object) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        server.close()

    signal.signal(signal.SIGTERM, _shutdown)
    signal.signal(signal.SIGINT, _shutdown)
    log.info("serving", url=address, simulate=settings.simulate, data_dir=str(settings.data_dir))
    print(f"edge controller ready at {address}", flush=True)
    try:
        server.run()
    except OSError:  # the listening socket was closed by _shutdown
        pass
    finally:
        controller.stop()
