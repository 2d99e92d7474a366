"""One way for every suite (and the benches) to get a station: the real composition root
(`build_controller`) on a KR-CU16 simulator on a pseudo-terminal, its SQLite store, the Flask
app with a local-API client, and, when asked, waitress on a free loopback port for Chromium.

Also the readers and steps the suites share: `wait_until`, the outbox and audit readers,
courier log-in, and a parcel deposited through the API. Conftests hold fixtures only; they
build their station here.
"""
from __future__ import annotations

import itertools
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from edge.app import Controller, Services, build_controller
from edge.clock import Clock, FakeClock
from edge.kiosk_ui import create_app
from edge.locker.service import LockerService
from edge.settings import Settings, load_settings
from edge.storage import AuditEntry, Database, OutboxEvent
from simulators.lockboard import LockBoardSimulator
from tests.support.platform import PLATFORM_PUBLIC_KEY, revealed
from tests.support.ports import free_port
from tests.support.wait import wait_until

COURIER_CODE = "246810"
COURIER_ID = "courier-7"
PHONE = "13812345678"
# Demo residents (simulators/demo_catalogue.json), synced in simulate mode.
RESIDENT_A = ("res-1001", "13800138000")
RESIDENT_B = ("res-1002", "13912345678")

# Fast polling and no unlock gap: the tests wait on conditions, not on the bus's pace.
FAST_LOCKER = {"boards": [0, 1], "poll_interval_s": 0.02, "reply_timeout_s": 0.05, "unlock_gap_s": 0.0}


def outbox(db: Database, type_: str | None = None) -> list[OutboxEvent]:
    """Outbox rows in seq order, of one event type when given."""
    with db.read() as s:
        query = select(OutboxEvent).order_by(OutboxEvent.seq)
        if type_:
            query = query.where(OutboxEvent.type == type_)
        return list(s.scalars(query))


def audits(db: Database, action: str | None = None) -> list[AuditEntry]:
    """Audit rows in order, of one action when given."""
    with db.read() as s:
        query = select(AuditEntry).order_by(AuditEntry.id)
        if action:
            query = query.where(AuditEntry.action == action)
        return list(s.scalars(query))


def station_settings(data_dir: Path, serial_url: str, *, simulate: bool = False,
                     offline_broker: bool = False, locker: dict[str, Any] | None = None,
                     **overrides: Any) -> Settings:
    """Settings for a station on the simulator at `serial_url`. `offline_broker`: a broker
    address where nobody listens, so events queue and no simulated cloud acts behind the
    test's back."""
    mqtt = overrides.setdefault("mqtt", {})
    mqtt.setdefault("platform_public_key", PLATFORM_PUBLIC_KEY)  # tests open sealed codes with its pair
    if offline_broker:
        mqtt.setdefault("host", "127.0.0.1")
        mqtt.setdefault("port", free_port())
    return load_settings(data_dir=data_dir, simulate=simulate, http={"port": 0}, locker={
        "serial_url": serial_url, **FAST_LOCKER, "couriers": {COURIER_CODE: COURIER_ID}, **(locker or {})},
        **overrides)


def api_client(controller: Controller) -> FlaskClient:
    """A client of the local API holding its credential (what `edge diag` and the controller's
    own user have); a courier's calls override it with their session token."""
    app = create_app(controller)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {app.config['EDGE_API_TOKEN']}"
    return client


def courier_login(client: FlaskClient, code: str = COURIER_CODE) -> dict[str, str]:
    """The courier's session header, from the API's log-in."""
    reply = client.post("/api/locker/courier/login", json={"code": code})
    assert reply.status_code == 200, reply.json
    return {"Authorization": f"Bearer {reply.json['token']}"}


_waybills = itertools.count(1234567890)


def start_deposit(client: FlaskClient, courier: dict[str, str], size: str = "M",
                  waybill: str | None = None, phone: str = PHONE) -> dict[str, Any]:
    """A deposit through the API; each gets its own waybill unless one is given (the locker
    refuses a waybill that is already inside)."""
    waybill = waybill or f"SF{next(_waybills)}"
    reply = client.post("/api/locker/deposits", headers=courier,
                        json={"waybill": waybill, "phone": phone, "size": size})
    assert reply.status_code == 201, reply.json
    return reply.json


def deposit_parcel(controller: Controller, client: FlaskClient, courier: dict[str, str],
                   sim: LockBoardSimulator, size: str = "M", **deposit: Any) -> tuple[Any, dict[str, Any]]:
    """A parcel stored through the API (the simulator puts the item in and shuts the door);
    returns (compartment spec, parcel.deposited data with the sealed code opened)."""
    started = start_deposit(client, courier, size=size, **deposit)
    spec = controller.services.locker.compartment_location(started["compartment"])
    sim.set_item(spec.board, spec.lock, True)
    sim.close_door(spec.board, spec.lock)
    event = wait_until(lambda: [e for e in outbox(controller.db, "parcel.deposited")
                                if e.data["deposit_id"] == started["deposit_id"]], what="deposited")[0]
    return spec, revealed(event)


def pickup_state(client: FlaskClient, pickup_id: str) -> str:
    """A pickup's state (or a parcel's, by its id) as the API reports it."""
    return client.get(f"/api/locker/pickups/{pickup_id}").json["state"]


def serve_until_closed(server: Any) -> None:
    """waitress's loop, until another thread closes the server (as edge.app.serve does)."""
    try:
        server.run()
    except OSError:  # the listening socket was closed under the loop's select()
        pass


@dataclass
class Station:
    """A running controller on its simulator, with what tests read and do through it."""

    controller: Controller
    sim: LockBoardSimulator
    clock: Clock
    app: Any
    client: FlaskClient
    url: str = ""  # set when served over HTTP (browser tests, benches)
    _stops: list[Callable[[], None]] = field(default_factory=list)

    @property
    def services(self) -> Services:
        return self.controller.services

    @property
    def db(self) -> Database:
        return self.controller.db

    @property
    def locker(self) -> LockerService:
        assert self.services.locker is not None
        return self.services.locker

    @property
    def qr_camera(self) -> Any:
        assert self.controller.simulation is not None
        return self.controller.simulation.qr_camera

    @property
    def iris_camera(self) -> Any:
        assert self.controller.simulation is not None
        return self.controller.simulation.iris_camera

    def outbox(self, type_: str | None = None) -> list[OutboxEvent]:
        return outbox(self.db, type_)

    def audits(self, action: str | None = None) -> list[AuditEntry]:
        return audits(self.db, action)

    def door(self, number: int) -> tuple[int, int]:
        """(board, lock) of a compartment."""
        spec = self.locker.compartment_location(number)
        return spec.board, spec.lock

    def door_open(self, number: int) -> bool:
        return self.sim.is_open(*self.door(number))

    def deposit(self, phone: str, size: str = "M") -> dict[str, Any]:
        """A parcel stored through the locker service (no courier session needed); returns
        parcel.deposited's data with the sealed code opened."""
        view = self.locker.start_deposit(COURIER_ID, f"SF{secrets.token_hex(5).upper()}", phone, size)
        board, lock = self.door(view.compartment)
        self.sim.set_item(board, lock, True)
        self.sim.close_door(board, lock)
        event = wait_until(lambda: [e for e in self.outbox("parcel.deposited")
                                    if e.data["deposit_id"] == view.deposit_id], what="deposited")[0]
        return revealed(event)

    def csrf(self, path: str = "/") -> str:
        """The kiosk's CSRF token, read from a screen as the browser would."""
        page = self.client.get(path).get_data(as_text=True)
        match = re.search(r'data-csrf="([^"]+)"', page)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def post(self, path: str, **form: str) -> Any:
        """A kiosk form posted with its CSRF token."""
        return self.client.post(path, data={"csrf_token": self.csrf(), **form})

    def serve(self, threads: int = 8) -> str:
        """The app on waitress at a free loopback port, until stop(); returns its URL."""
        from waitress.server import create_server

        server = create_server(self.app, host="127.0.0.1", port=0, threads=threads)
        thread = threading.Thread(target=serve_until_closed, args=(server,), name="waitress", daemon=True)
        thread.start()

        def close() -> None:
            server.task_dispatcher.shutdown(timeout=5)
            server.close()
            thread.join(5)

        self._stops.append(close)
        self.url = f"http://127.0.0.1:{server.effective_port}"
        return self.url

    def stop(self) -> None:
        if self.services.live is not None:
            self.services.live.stop()  # open event streams end before the server closes
        for stop in reversed(self._stops):
            stop()
        self._stops.clear()
        self.controller.stop()


@contextmanager
def running_station(data_dir: Path, sim: LockBoardSimulator | None = None, *,
                    clock: Clock | None = None, serve: bool = False,
                    **settings: Any) -> Iterator[Station]:
    """A started station; stopped (and a simulator it made, stopped) on exit. `sim`: a
    simulator already serving (the test's own); else one with boards 0 and 1 on a PTY.
    `settings`: as station_settings takes them (simulate, offline_broker, locker, ...)."""
    own_sim = sim is None
    if sim is None:
        sim = LockBoardSimulator(boards=[0, 1])
        sim.start_pty()
    clock = clock or FakeClock()
    try:
        controller = build_controller(station_settings(data_dir, sim.url, **settings), clock=clock)
        controller.start()
        client = api_client(controller)
        station = Station(controller, sim, clock, client.application, client)
        try:
            if serve:
                station.serve()
            yield station
        finally:
            station.stop()
    finally:
        if own_sim:
            sim.stop()


def locker_settings(data_dir: Path, serial_url: str, **locker: Any) -> Settings:
    """station_settings with locker overrides only (a second controller on the same box)."""
    return station_settings(data_dir, serial_url, locker=locker)
