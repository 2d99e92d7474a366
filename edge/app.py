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
    from cloud_bridge.config import apply_stored_overrides

    db = Database(settings.database_path)
    db.upgrade()
    settings = apply_stored_overrides(settings, db)  # what the cloud set with config.set
    controller = Controller(settings=settings, db=db, clock=clock or SystemClock())
    _build_locker(controller)
    _build_community(controller)
    _build_identity(controller)
    _build_bridge(controller)
    return controller


def _build_locker(controller: Controller) -> None:
    """The parcel locker: bus (or, in simulate mode, an in-process simulator on a PTY),
    buzzer, key files, service, door monitor and minute jobs. No serial URL and no
    --simulate: this box has no locker. Raises BusBusy when another process owns the bus."""
    from edge.drivers.lockboard import BusError, open_lockboard_bus
    from edge.identity.keys import load_or_create_key
    from edge.identity.tokens import PickupTokenCodec
    from edge.locker.buslock import BusLock, bus_lock_path
    from edge.locker.diagnostics import LockerDiagnostics
    from edge.locker.monitor import DoorMonitor, LockerJobs
    from edge.locker.runtime import LockerRuntime
    from edge.locker.service import LockerService
    from edge.settings import SettingsError

    settings, locker = controller.settings, controller.settings.locker
    if locker.serial_url is None and not settings.simulate:
        log.info("no_locker", why="locker.serial_url is not set")
        return
    bus_lock = BusLock(bus_lock_path(settings.data_dir)).acquire()
    cleanups: list[Any] = [bus_lock.release]
    try:
        url, simulator = locker.serial_url, None
        if url is None:
            from simulators.lockboard import LockBoardSimulator

            simulator = LockBoardSimulator(locker.boards, closed_bit=locker.closed_bit, auto_close_s=8.0)
            url = simulator.start_pty()
            cleanups.append(simulator.stop)
            controller.services["lockboard_simulator"] = simulator
        try:
            bus = open_lockboard_bus(url, boards=locker.boards, closed_bit=locker.closed_bit,
                                     baudrate=locker.baudrate, reply_timeout_s=locker.reply_timeout_s,
                                     unlock_gap_s=locker.unlock_gap_s, rs485_rts=locker.rs485_rts,
                                     echo_window_s=locker.unlock_echo_window_s)
        except BusError as exc:  # a URL no port can ever take; an absent device is retried
            raise SettingsError(f"bad setting locker.serial_url (EDGE_LOCKER__SERIAL_URL): {exc}") from None
    except Exception:
        for cleanup in reversed(cleanups):
            cleanup()
        raise
    cleanups.remove(bus_lock.release)
    station_io = controller.services.get("station_io")
    if station_io is None and (settings.gpio.enabled or settings.simulate):
        from edge.drivers.gpio import StationIO

        pin_factory = None
        if not settings.gpio.enabled:
            from gpiozero.pins.mock import MockFactory

            pin_factory = MockFactory()
        gpio = settings.gpio
        station_io = StationIO(gpio.presence_pin, gpio.buzzer_pin, gpio.light_pin, pin_factory=pin_factory)
        controller.services["station_io"] = station_io
        cleanups.append(station_io.close)

    def alarm(on: bool) -> None:
        if station_io is None:
            log.warning("door_alarm", on=on, buzzer="none")
        elif on:
            station_io.alarm_on()
        else:
            station_io.alarm_off()

    secret = load_or_create_key(settings.keys_dir / "pickup_code.key", 32)
    tokens = PickupTokenCodec(load_or_create_key(settings.keys_dir / "pickup_token.key", 32))
    if settings.simulate and not locker.couriers:
        locker.couriers = {"000000": "demo-courier"}  # so a person can try the courier screens
    # The live settings object, not a copy: config.set changes thresholds in place.
    service = LockerService(controller.db, bus, locker.layout(), controller.clock, secret, tokens,
                            alarm, locker, site_id=settings.mqtt.site_id)
    if simulator is not None:
        from edge.locker.demo import DemoHand

        service.subscribe(DemoHand(simulator, service))
    controller.services["locker"] = service
    controller.services["locker_diagnostics"] = LockerDiagnostics(service, bus, controller.db,
                                                                  settings.keys_dir)
    controller.components.append(LockerRuntime(
        service, bus, bus_lock, DoorMonitor(service, locker.poll_interval_s), LockerJobs(service),
        cleanups))


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


def _build_identity(controller: Controller) -> None:
    """QR source (camera or serial scanner; kiosk screens start and stop it while they wait
    for a scan), iris camera and IrisService, and the link from a resident to the phone hash
    their parcels are filed under. Simulate mode: simulated cameras for both, exposed as
    services "qr_camera_sim" and "iris_camera_sim"."""
    from edge.drivers.camera import OpenCVCamera
    from edge.drivers.qr import QrScanner
    from edge.drivers.scanner import SerialScanner, parse_terminator
    from edge.identity.service import IrisService
    from edge.identity.templates import TemplateCipher

    settings, services = controller.settings, controller.services
    identity = settings.identity
    scanner: Any = None
    if identity.qr_camera is not None:
        scanner = QrScanner(OpenCVCamera(identity.qr_camera, 1280, 720))
    elif identity.scanner_url is not None:
        scanner = SerialScanner(identity.scanner_url,
                                terminator=parse_terminator(identity.scanner_terminator))
    iris_camera: Any = OpenCVCamera(identity.iris_camera, 640, 480) if identity.iris_camera else None
    if settings.simulate:
        from simulators.camera import SimulatedCamera

        if scanner is None:
            services["qr_camera_sim"] = SimulatedCamera((1280, 720), fps=15.0)
            scanner = QrScanner(services["qr_camera_sim"])
        if iris_camera is None:
            iris_camera = services["iris_camera_sim"] = SimulatedCamera((640, 480), fps=15.0)
    if scanner is not None:
        services["qr_scanner"] = scanner
        controller.components.append(_Closing(scanner))
    key_file = identity.iris_key_file or settings.keys_dir / "iris.key"
    iris = IrisService(controller.db, controller.clock, TemplateCipher.from_key_file(key_file),
                       iris_camera, station=settings.mqtt.device_id,
                       illuminator=_iris_illuminator(settings, iris_camera))
    services["iris"] = iris
    controller.components.append(iris)
    if "locker" in services and "residents" in services:
        services["locker"].resident_phone_hash = services["residents"].phone_hash_of


@dataclass
class _Closing:
    """A driver that runs from its first use and ends with close(), as a component."""

    driver: Any

    def start(self) -> None:
        """Nothing: scanning starts when a screen asks for a scan."""

    def stop(self) -> None:
        self.driver.close()


def _build_bridge(controller: Controller) -> None:
    """The cloud bridge, with a command handler for each service that exists. In simulate
    mode with no broker configured (and Mosquitto installed), a private broker and the
    reference cloud peer run alongside, so the whole loop works on a laptop."""
    from importlib.metadata import PackageNotFoundError, version

    from cloud_bridge import Bridge, CommandRouter, ConfigCommand
    from cloud_bridge.commands import ping_handler
    from edge.storage import outbox
    from simulators.cloud import CloudSimulator, PrivateBroker, load_catalogue

    settings, db, clock, services = controller.settings, controller.db, controller.clock, controller.services
    with db.write() as session:
        outbox.set_budget(session, max_rows=settings.outbox.max_pending_rows,
                          max_bytes=settings.outbox.max_pending_bytes)
    if settings.simulate and not settings.mqtt.host and PrivateBroker.available():
        broker = PrivateBroker()
        settings.mqtt = settings.mqtt.model_copy(update={"host": broker.host, "port": broker.port})
        # The simulated cloud sends a catalogue only to a box that has none (the community
        # part seeds its demo through the same replace() that catalogue.sync calls).
        seeded = "catalogue" in services and not services["catalogue"].is_empty()
        cloud = CloudSimulator(broker.host, broker.port,
                               catalogue=None if seeded else load_catalogue(None, settings.mqtt.site_id))
        controller.components += [broker, cloud]
    try:
        software = version("community-station-edge")
    except PackageNotFoundError:
        software = "0+unknown"
    router = CommandRouter(db, clock)
    router.register("ping", ping_handler(software), in_transaction=True)
    router.register("config.set", ConfigCommand(settings), in_transaction=True)
    if "catalogue" in services:
        router.register("catalogue.sync", services["catalogue"].replace)
    if "bookings" in services:
        router.register("booking.decision", lambda data: services["bookings"].decide(
            data["booking_id"], data["decision"] == "approved", data.get("reason")))
    locker = services.get("locker")
    if locker is not None:
        router.register("locker.open", lambda data: _open_remote(locker, data))
    bridge = Bridge(settings, db, router, clock=clock, version=software,
                    compartments=locker.snapshot if locker is not None else None)
    if locker is not None:
        locker.subscribe(bridge.compartments_changed)
    services["bridge"] = bridge
    controller.components.append(bridge)


def _open_remote(locker: Any, data: dict[str, Any]) -> dict[str, Any]:
    """A remote open the status did not confirm is a failed command for the operator, not ok."""
    from edge.locker.errors import DoorDidNotOpen

    result = locker.open_remote(data["compartment"], data["operator"], data["reason"])
    if not result["opened"]:
        raise DoorDidNotOpen(f"compartment {result['compartment']} did not open: {result['error']}")
    return result


def serve(controller: Controller) -> None:
    """Run until SIGTERM or SIGINT: components, then the local web app in this thread."""
    from waitress.server import create_server

    from edge.kiosk_ui import create_app
    from edge.watchdog import Watchdog, database_answers, http_answers

    settings = controller.settings
    app = create_app(controller)
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


def _iris_illuminator(settings: Settings, iris_camera: Any) -> Any:
    """The iris camera's NIR LEDs (GPIO pins in settings.identity), or in simulate mode
    the simulated camera's own; None: no live-eye check, so iris opens no door."""
    identity = settings.identity
    if identity.iris_led_left_pin is not None and identity.iris_led_right_pin is not None:
        from edge.drivers.gpio import NirIlluminator

        return NirIlluminator(identity.iris_led_left_pin, identity.iris_led_right_pin)
    return iris_camera if hasattr(iris_camera, "set_pattern") else None
