"""Simulate mode in one place: the simulated devices the controller runs alongside, and the
demo data that lets a person try every screen on a laptop.

Built only when `settings.simulate` is on, by the composition root (edge/app.py). The
`simulators` package is an outer layer: only this module and the command line import it;
the domain (edge/locker, edge/community, edge/identity) and the kiosk never do. Screens
reach a simulated device through `controller.simulation`, which is None on a real box.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from edge.community import CatalogueService
    from edge.locker.service import LockerService
    from edge.settings import LockerSettings, Settings
    from simulators.camera import SimulatedCamera
    from simulators.cloud import CloudSimulator, PrivateBroker
    from simulators.lockboard import LockBoardSimulator

DEMO_COURIERS = {"000000": "demo-courier"}  # so a person can try the courier screens
LOCKBOARD_AUTO_CLOSE_S = 8.0  # simulated doors shut by themselves, as a person would
STAFF_WORK_S = 20.0  # the simulated cloud's staff finish a request this long after taking it


@dataclass
class Simulation:
    """The simulated devices of this run; a device the settings name for real stays None."""

    lockboard: LockBoardSimulator | None = None
    qr_camera: SimulatedCamera | None = None
    iris_camera: SimulatedCamera | None = None
    station_camera: SimulatedCamera | None = None
    broker: PrivateBroker | None = None
    cloud: CloudSimulator | None = None

    # --- devices, as the composition root asks for them ----------------------------------

    def start_lockboard(self, locker: LockerSettings) -> str:
        """A bus simulator of the configured family (KR-CU16 or Modbus RTU) on a PTY; its
        port path, for the real driver to open."""
        from simulators.modbus_lockboard import simulator_for

        self.lockboard = simulator_for(locker.boards, locker.closed_bit, auto_close_s=LOCKBOARD_AUTO_CLOSE_S,
                                       **locker.bus_options())
        return self.lockboard.start_pty()

    def add_cameras(self, want_qr: bool, want_iris: bool) -> None:
        from simulators.camera import SimulatedCamera

        if want_qr:
            self.qr_camera = SimulatedCamera((1280, 720), fps=15.0)
        if want_iris:
            self.iris_camera = SimulatedCamera((640, 480), fps=15.0)

    def add_station_camera(self) -> Any:
        """The simulated camera covering the locker (`fail()` makes it give no picture)."""
        from simulators.camera import SimulatedCamera

        self.station_camera = SimulatedCamera((640, 480), fps=None)
        return self.station_camera

    def start_cloud(self, settings: Settings, box_has_catalogue: bool, *, auto_staff: bool = True) -> list[Any]:
        """A private Mosquitto and the reference cloud peer, pointed at by settings.mqtt;
        nothing when Mosquitto is not installed. Returns them as components, in start order.
        This is the fallback of `./dev run` where no platform can run (no PostgreSQL), so its
        auto-staff is on: bookings are decided and requests followed up by rule (ADR 0164)."""
        from simulators.cloud import CloudSimulator, PrivateBroker, load_catalogue

        if not PrivateBroker.available():
            return []
        self.broker = PrivateBroker()
        settings.mqtt = settings.mqtt.model_copy(update={"host": self.broker.host,
                                                         "port": self.broker.port})
        # The simulated cloud sends a catalogue only to a box that has none (the community
        # part seeds its demo through the same replace() that catalogue.sync calls).
        catalogue = None if box_has_catalogue else load_catalogue(None, settings.mqtt.site_id)
        # Staff follow requests up slowly enough to see 我的服务 go from yellow to green.
        self.cloud = CloudSimulator.for_demo(self.broker.host, self.broker.port, auto_staff=auto_staff,
                                             staff_work_s=STAFF_WORK_S, catalogue=catalogue,
                                             platform_key=self._cloud_platform_key(settings))
        return [self.broker, self.cloud]

    @staticmethod
    def use_platform_key(settings: Settings) -> None:
        """No platform key set: the simulated cloud's own key pair (kept under keys/), so
        deposits seal their codes to it and it can open them for the demo."""
        if settings.mqtt.platform_public_key:
            return
        from simulators.cloud import ensure_platform_keys

        public = ensure_platform_keys(settings.keys_dir)
        settings.mqtt = settings.mqtt.model_copy(update={"platform_public_key": public})

    @staticmethod
    def _cloud_platform_key(settings: Settings) -> Any:
        """The simulated cloud opens sealed secrets only when the edge seals to its key."""
        from edge.identity.sealing import public_key_text
        from simulators.cloud import simulated_platform_key

        key = simulated_platform_key(settings.keys_dir)
        return key if public_key_text(key.public_key()) == settings.mqtt.platform_public_key else None

    # --- demo data and the demo hand ------------------------------------------------------

    def attach_demo_hand(self, locker: LockerService) -> None:
        """Doors opened for a deposit get an item, doors opened for a pickup are emptied."""
        if self.lockboard is not None:
            from simulators.demo_hand import DemoHand

            locker.subscribe(DemoHand(self.lockboard, locker))

    @staticmethod
    def resident_token_public_key(keys_dir: Path) -> Path:
        """The demo platform's public key, so residents' demo QR codes are accepted."""
        from simulators.demo import ensure_demo_token_keys

        return ensure_demo_token_keys(keys_dir)

    @staticmethod
    def seed_catalogue(catalogue: CatalogueService, now: datetime, tz: ZoneInfo, site_id: str) -> None:
        """The demo catalogue on an empty box, through the same replace() the cloud uses."""
        from simulators.demo import demo_catalogue

        if catalogue.is_empty():
            catalogue.replace(demo_catalogue(now, tz, site_id))

    # --- what the kiosk's simulate-only controls do ----------------------------------------

    def show_qr(self, text: str, frames: int) -> bool:
        """Hold a code up to the simulated QR camera; False when there is none."""
        if self.qr_camera is None or not text:
            return False
        self.qr_camera.show_qr(text, frames=frames)
        return True

    def show_iris_scene(self, resident_id: str, scene: str) -> bool:
        """The kiosk's simulate-only control: put `scene` in front of the iris camera for
        `resident_id` ("stranger": someone nobody enrolled). Scenes: "live" (the eye, as a
        resident would show it), a trouble of simulators.camera.EYE_TROUBLES ("too_far",
        "blurred", "closed", "glasses", "too_bright"), an attack ("paper", "photo",
        "screen": simulators.camera.SimulatedCamera.show_print), or "nothing". False when
        there is no simulated iris camera or the scene is unknown."""
        from simulators.camera import EYE_TROUBLES
        from simulators.people import synthetic_person

        camera = self.iris_camera
        if camera is None or not resident_id:
            return False
        if scene == "nothing":
            camera.show_nothing()
        elif scene == "live":
            camera.show_eye(synthetic_person(resident_id))
        elif scene in EYE_TROUBLES:
            camera.show_eye(synthetic_person(resident_id), trouble=scene)
        elif scene in ("paper", "photo", "screen"):
            camera.show_print(synthetic_person(resident_id), medium=scene)
        else:
            return False
        return True

    @staticmethod
    def still_camera(purpose: str, qr_text: str) -> SimulatedCamera:
        """For `edge diag`: a camera that shows `qr_text` ("qr") or a synthetic eye ("iris")."""
        from simulators.camera import SimulatedCamera

        camera = SimulatedCamera((1280, 720) if purpose == "qr" else (640, 480), fps=None)
        if purpose == "qr":
            camera.show_qr(qr_text)
        else:
            camera.show_eye(1)
        return camera
