from __future__ import annotations

from pathlib import Path

import pytest

from edge.clock import FakeClock
from edge.settings import Settings, load_settings
from edge.storage import Database
from tests.support.browser import launch_browser
from simulators.lockboard import LockBoardSimulator
from tests.support.mosquitto import Broker


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's EDGE_* variables or /etc/edge."""
    import os

    for name in list(os.environ):
        if name.startswith("EDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr("edge.settings.DEFAULT_CONFIG_FILE", Path("/nonexistent/edge.toml"))
    # Every test box seals pickup secrets to the test platform's key (tests/support/platform.py).
    from tests.support.platform import PLATFORM_PUBLIC_KEY

    monkeypatch.setenv("EDGE_MQTT__PLATFORM_PUBLIC_KEY", PLATFORM_PUBLIC_KEY)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data", http={"port": 0})


@pytest.fixture
def db(settings: Settings) -> Database:
    database = Database(settings.database_path)
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def broker(tmp_path: Path) -> Broker:
    running = Broker(tmp_path / "broker").start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium through Playwright, one for the session (tests/support/browser.py)."""
    yield from launch_browser()


@pytest.fixture
def sim():
    """A KR-CU16 bus simulator with boards 0 and 1, not yet serving: a test (or a narrower
    fixture) starts it on a PTY or TCP; `sim.url` is then what a driver opens."""
    simulator = LockBoardSimulator(boards=[0, 1])
    yield simulator
    simulator.stop()
