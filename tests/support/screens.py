"""A station with screens and GPIO but no locker (no bus configured): the kiosk's pages and
forms on their own. Fixtures, imported by the suites that use them, and the CSRF reader."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from gpiozero.pins.mock import MockFactory

from edge.app import Controller, attach_station_io, build_controller
from edge.clock import FakeClock
from edge.drivers.gpio import StationIO
from edge.kiosk_ui import create_app
from edge.settings import Settings


@pytest.fixture
def pins() -> MockFactory:
    return MockFactory()


@pytest.fixture
def controller(settings: Settings, clock: FakeClock, pins: MockFactory) -> Iterator[Controller]:
    built = build_controller(settings, clock=clock)
    gpio = settings.gpio
    station_io = StationIO(gpio.presence_pin, gpio.buzzer_pin, gpio.light_pin, pin_factory=pins)
    attach_station_io(built, station_io)
    yield built
    station_io.close()
    built.stop()


@pytest.fixture
def app(controller: Controller) -> Any:
    return create_app(controller)


@pytest.fixture
def client(app: Any) -> FlaskClient:
    return app.test_client()


def csrf_of(client: FlaskClient, path: str = "/") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'data-csrf="([^"]+)"', page).group(1)


def identify_by_phone(client: FlaskClient, phone: str = "13800138000") -> Any:
    """Identify with a typed phone (low assurance) on the way to the activities screen; the
    default is res-1001 of the demo catalogue."""
    token = csrf_of(client, "/identify/?next=/activities/")
    return client.post("/identify/phone?next=/activities/",
                       data={"csrf_token": token, "phone": phone})
