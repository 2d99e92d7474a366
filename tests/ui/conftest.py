"""Browser tests: the real controller (build_controller, lock-board simulator on a PTY owned by
the test, SQLite) served by waitress on a free loopback port, driven by Debian's Chromium
(tests/support/station.py; page helpers in tests/support/browser.py)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flask.testing import FlaskClient
from zoneinfo import ZoneInfo

from edge.app import Controller, build_controller
from edge.clock import FakeClock, SystemClock
from edge.kiosk_ui import create_app
from edge.settings import Settings
from simulators.demo import demo_catalogue
from tests.support.browser import LANDSCAPE
from tests.support.station import Station, running_station


@pytest.fixture
def kiosk_settings() -> dict[str, Any]:
    """Per-test overrides, e.g. {"kiosk": {"idle_timeout_s": 5}}."""
    return {}


@pytest.fixture
def kiosk(tmp_path: Path, kiosk_settings: dict[str, Any]) -> Iterator[Station]:
    """The station served over HTTP on real time, for Chromium. A broker address where nobody
    listens: events queue, and no simulated cloud decides bookings behind the test's back
    (the test decides, as the bridge's handler would)."""
    overrides = dict(kiosk_settings)
    locker = {"poll_interval_s": 0.05, **overrides.pop("locker", {})}
    with running_station(tmp_path / "data", clock=SystemClock(), serve=True, simulate=True,
                         offline_broker=True, locker=locker, **overrides) as running:
        yield running


@pytest.fixture
def page(browser: Any, kiosk: Station) -> Iterator[Any]:
    context = browser.new_context(viewport=LANDSCAPE, base_url=kiosk.url, locale="zh-CN")
    context.set_default_timeout(10_000)
    opened = context.new_page()
    yield opened
    context.close()


# Server-side screen tests (no browser, no locker): the controller with the demo catalogue
# and a plain client of its app. test_screens_http.py uses its own, with GPIO pins.
@pytest.fixture
def controller(settings: Settings, clock: FakeClock) -> Iterator[Controller]:
    built = build_controller(settings, clock=clock)
    built.services.catalogue.replace(demo_catalogue(clock.now(), ZoneInfo("Asia/Shanghai"),
                                                    settings.mqtt.site_id))
    yield built
    built.stop()


@pytest.fixture
def client(controller: Controller) -> FlaskClient:
    return create_app(controller).test_client()
