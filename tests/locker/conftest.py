"""Locker tests run the real controller wiring (build_controller, Flask app, Kerong driver)
against the lock-board simulator on a pseudo-terminal."""
from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from edge.app import Controller, build_controller
from edge.clock import FakeClock
from edge.kiosk_ui import create_app
from edge.settings import Settings, load_settings
from edge.storage import AuditEntry, Database, OutboxEvent
from simulators.lockboard import LockBoardSimulator

COURIER_CODE = "246810"
COURIER_ID = "courier-7"
PHONE = "13812345678"


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def outbox(db: Database, type_: str | None = None) -> list[OutboxEvent]:
    with db.read() as s:
        query = select(OutboxEvent).order_by(OutboxEvent.seq)
        if type_:
            query = query.where(OutboxEvent.type == type_)
        return list(s.scalars(query))


def audits(db: Database, action: str | None = None) -> list[AuditEntry]:
    with db.read() as s:
        query = select(AuditEntry).order_by(AuditEntry.id)
        if action:
            query = query.where(AuditEntry.action == action)
        return list(s.scalars(query))


@pytest.fixture
def sim(sim: LockBoardSimulator) -> LockBoardSimulator:
    """The shared simulator (tests/conftest.py), serving on a PTY for the locker's tests."""
    sim.start_pty()
    return sim


def locker_settings(data_dir: Path, url: str, **locker: Any) -> Settings:
    return load_settings(data_dir=data_dir, http={"port": 0}, locker={
        "serial_url": url, "boards": [0, 1], "poll_interval_s": 0.02, "reply_timeout_s": 0.05,
        "unlock_gap_s": 0.0, "couriers": {COURIER_CODE: COURIER_ID}, **locker})


@pytest.fixture
def locker_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def controller(tmp_path: Path, sim: LockBoardSimulator, fake_clock: FakeClock,
               locker_overrides: dict[str, Any]) -> Iterator[Controller]:
    settings = locker_settings(tmp_path / "data", sim.url, **locker_overrides)
    built = build_controller(settings, clock=fake_clock)
    built.start()
    yield built
    built.stop()


def api_client(controller: Controller) -> FlaskClient:
    """A client of the local API holding its credential (what `edge diag` and the controller's
    own user have); a courier's calls override it with their session token."""
    app = create_app(controller)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {app.config['EDGE_API_TOKEN']}"
    return client


@pytest.fixture
def client(controller: Controller) -> FlaskClient:
    return api_client(controller)


@pytest.fixture
def courier(client: FlaskClient) -> dict[str, str]:
    reply = client.post("/api/locker/courier/login", json={"code": COURIER_CODE})
    assert reply.status_code == 200, reply.json
    return {"Authorization": f"Bearer {reply.json['token']}"}


_waybills = itertools.count(1234567890)


def start_deposit(client: FlaskClient, courier: dict[str, str], size: str = "M",
                  waybill: str | None = None) -> dict[str, Any]:
    """A deposit through the API; each gets its own waybill unless one is given (the locker
    refuses a waybill that is already inside)."""
    waybill = waybill or f"SF{next(_waybills)}"
    reply = client.post("/api/locker/deposits", headers=courier,
                        json={"waybill": waybill, "phone": PHONE, "size": size})
    assert reply.status_code == 201, reply.json
    return reply.json
