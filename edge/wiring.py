"""The composition root's small parts: devices and helpers edge/app.py's build steps use.

Owns choosing the configured QR source and cameras (and `build_camera` for `edge diag`),
the iris illuminator, the station's GPIO and door alarm, the sealer to the platform's key,
the request.update command handler and the adapter that runs a driver as a component.
Builds no service: that stays in edge/app.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge.logs import get_logger
from edge.settings import Settings
from edge.simulation import Simulation

if TYPE_CHECKING:
    from edge.controller import Controller
    from edge.drivers.gpio import StationIO

log = get_logger("edge.app")  # the records keep the name they had when this lived there


def station_io_for(controller: Controller, cleanups: list[Any]) -> StationIO | None:
    """Presence sensor, buzzer and light: real pins, mock pins in simulate mode, or none."""
    settings = controller.settings
    station_io = controller.services.station_io
    if station_io is None and (settings.gpio.enabled or settings.simulate):
        from edge.drivers.gpio import StationIO

        pin_factory = None
        if not settings.gpio.enabled:
            from gpiozero.pins.mock import MockFactory

            pin_factory = MockFactory()
        gpio = settings.gpio
        station_io = StationIO(gpio.presence_pin, gpio.buzzer_pin, gpio.light_pin, pin_factory=pin_factory)
        controller.services.station_io = station_io
        cleanups.append(station_io.close)
    return station_io


def door_alarm(station_io: StationIO | None) -> Any:
    def alarm(on: bool) -> None:
        if station_io is None:
            log.warning("door_alarm", on=on, buzzer="none")
        elif on:
            station_io.alarm_on()
        else:
            station_io.alarm_off()

    return alarm


def configured_scanner(settings: Settings) -> Any:
    """The QR source the settings name: a camera, else a serial scanner, else None."""
    from edge.drivers.camera import OpenCVCamera
    from edge.drivers.qr import QrScanner
    from edge.drivers.scanner import SerialScanner, parse_terminator

    identity = settings.identity
    if identity.qr_camera is not None:
        return QrScanner(OpenCVCamera(identity.qr_camera, 1280, 720))
    if identity.scanner_url is not None:
        return SerialScanner(identity.scanner_url, terminator=parse_terminator(identity.scanner_terminator))
    return None


def configured_camera(settings: Settings, purpose: str) -> Any:
    """The OpenCV camera the settings name for "qr" or "iris", or None."""
    from edge.drivers.camera import OpenCVCamera

    spec = settings.identity.qr_camera if purpose == "qr" else settings.identity.iris_camera
    if spec is None:
        return None
    return OpenCVCamera(spec, *((1280, 720) if purpose == "qr" else (640, 480)))


def build_camera(settings: Settings, purpose: str, *, sim_qr_text: str = "") -> Any:
    """For `edge diag`: the configured "qr" or "iris" camera; in simulate mode with none
    configured, a still simulated one showing `sim_qr_text` or a synthetic eye; else None."""
    camera = configured_camera(settings, purpose)
    if camera is None and settings.simulate:
        camera = Simulation.still_camera(purpose, sim_qr_text)
    return camera


@dataclass
class ClosingDriver:
    """A driver that runs from its first use and ends with close(), as a component."""

    driver: Any

    def start(self) -> None:
        """Nothing: scanning starts when a screen asks for a scan."""

    def stop(self) -> None:
        self.driver.close()


def platform_sealer(settings: Settings, warn: bool = True) -> Any:
    """seal(secret, message_id) to the platform's key, or None when no key is set."""
    from edge.identity.sealing import parse_public_key, seal

    if not settings.mqtt.platform_public_key:
        if warn:
            log.warning("no_platform_key", why="mqtt.platform_public_key is not set: deposits are refused")
        return None
    key = parse_public_key(settings.mqtt.platform_public_key)
    return lambda secret, message_id: seal(key, secret, message_id)


def request_update_handler(requests: Any) -> Any:
    """cmd request.update: staff's status and reply for a request, letter or feedback. The
    reply names only the id and status: the resident's words already went out once."""
    def handle(data: dict[str, Any]) -> dict[str, str]:
        followed = requests.update(data["request_id"], data["status"], data["reply"], data["staff"])
        return {"request_id": followed.item_id, "status": followed.status}

    return handle


def iris_illuminator(settings: Settings, iris_camera: Any) -> Any:
    """The iris camera's NIR LEDs (GPIO pins in settings.identity), or in simulate mode
    the simulated camera's own; None: no live-eye check, so iris opens no door."""
    identity = settings.identity
    if identity.iris_led_left_pin is not None and identity.iris_led_right_pin is not None:
        from edge.drivers.gpio import NirIlluminator

        return NirIlluminator(identity.iris_led_left_pin, identity.iris_led_right_pin)
    return iris_camera if hasattr(iris_camera, "set_pattern") else None
