"""Identity end to end: the real controller wiring in simulate mode (simulated QR and iris
cameras) with the lock-board simulator on a PTY owned by the test, and no cloud broker."""
from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from edge.app import Controller, build_controller
from edge.clock import FakeClock
from edge.kiosk_ui import create_app
from edge.locker.service import LockerService
from simulators.camera import SimulatedCamera
from simulators.lockboard import LockBoardSimulator
from tests.locker.conftest import outbox, wait_until
from tests.support.ports import free_port
from tests.support.platform import revealed

COURIER_ID = "courier-7"
COURIER_CODE = "246810"
# Demo residents (simulators/demo_catalogue.json), synced in simulate mode.
RESIDENT_A = ("res-1001", "13800138000")
RESIDENT_B = ("res-1002", "13912345678")


@dataclass
class Station:
    controller: Controller
    sim: LockBoardSimulator
    client: FlaskClient
    clock: FakeClock

    @property
    def locker(self) -> LockerService:
        return self.controller.services.locker

    @property
    def qr_camera(self) -> SimulatedCamera:
        return self.controller.simulation.qr_camera

    @property
    def iris_camera(self) -> SimulatedCamera:
        return self.controller.simulation.iris_camera

    def deposit(self, phone: str, size: str = "M") -> dict[str, Any]:
        """A parcel stored through the locker service; returns parcel.deposited's data."""
        view = self.locker.start_deposit(COURIER_ID, f"SF{secrets.token_hex(5).upper()}", phone, size)
        spec = self.locker.compartment_location(view.compartment)
        self.sim.set_item(spec.board, spec.lock, True)
        self.sim.close_door(spec.board, spec.lock)
        return wait_until(lambda: [revealed(e) for e in outbox(self.controller.db, "parcel.deposited")
                                   if e.data["deposit_id"] == view.deposit_id], what="deposited")[0]

    def door_open(self, compartment: int) -> bool:
        spec = self.locker.compartment_location(compartment)
        return self.sim.is_open(spec.board, spec.lock)

    def csrf(self, path: str = "/") -> str:
        page = self.client.get(path).get_data(as_text=True)
        return re.search(r'data-csrf="([^"]+)"', page).group(1)

    def post(self, path: str, **form: str) -> Any:
        return self.client.post(path, data={"csrf_token": self.csrf(), **form})


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    from edge.settings import load_settings

    sim = LockBoardSimulator(boards=[0, 1])
    path = sim.start_pty()
    settings = load_settings(
        data_dir=tmp_path / "data", simulate=True, http={"port": 0},
        mqtt={"host": "127.0.0.1", "port": free_port()},
        locker={"serial_url": path, "boards": [0, 1], "poll_interval_s": 0.02,
                "reply_timeout_s": 0.05, "unlock_gap_s": 0.0, "couriers": {COURIER_CODE: COURIER_ID}})
    clock = FakeClock()
    controller = build_controller(settings, clock=clock)
    controller.start()
    app = create_app(controller)
    try:
        yield Station(controller, sim, app.test_client(), clock)
    finally:
        app.extensions["edge"].services.live.stop()
        controller.stop()
        sim.stop()
