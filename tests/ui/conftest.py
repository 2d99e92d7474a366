"""Browser tests: the real controller (build_controller, lock-board simulator on a PTY owned by
the test, SQLite) served by waitress on a free loopback port, driven by Debian's Chromium."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from edge.app import Controller, build_controller
from edge.kiosk_ui import create_app
from edge.settings import load_settings
from edge.storage import OutboxEvent
from simulators.lockboard import LockBoardSimulator
from tests.support.ports import free_port

COURIER_CODE = "20261121"
COURIER_ID = "courier-sf"
RESIDENT_PHONE = "13800138000"  # a demo resident (simulators/demo_catalogue.json)
LANDSCAPE = {"width": 1280, "height": 800}
PORTRAIT = {"width": 1080, "height": 1920}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def serve_until_closed(server: Any) -> None:
    """waitress's loop, until another thread closes the server (as edge.app.serve does)."""
    try:
        server.run()
    except OSError:  # the listening socket was closed under the loop's select()
        pass


@dataclass
class Kiosk:
    controller: Controller
    simulator: LockBoardSimulator
    app: Any
    url: str

    def service(self, name: str) -> Any:
        return getattr(self.controller.services, name)

    def outbox(self, type_: str) -> list[OutboxEvent]:
        with self.controller.db.read() as s:
            return list(s.scalars(select(OutboxEvent).where(OutboxEvent.type == type_)
                                  .order_by(OutboxEvent.seq)))

    def door(self, number: int) -> tuple[int, int]:
        spec = self.service("locker").compartment_location(number)
        return spec.board, spec.lock


@pytest.fixture
def kiosk_settings() -> dict[str, Any]:
    """Per-test overrides, e.g. {"kiosk": {"idle_timeout_s": 5}}."""
    return {}


@pytest.fixture
def kiosk(tmp_path: Path, kiosk_settings: dict[str, Any]) -> Iterator[Kiosk]:
    from waitress.server import create_server

    overrides = dict(kiosk_settings)
    simulator = LockBoardSimulator(boards=[0, 1])
    path = simulator.start_pty()
    locker = {"serial_url": path, "boards": [0, 1], "poll_interval_s": 0.05,
              "couriers": {COURIER_CODE: COURIER_ID}, **overrides.pop("locker", {})}
    # A broker address where nobody listens: events queue, and no simulated cloud decides
    # bookings behind the test's back (the test decides, as the bridge's handler would).
    mqtt = {"host": "127.0.0.1", "port": free_port(), **overrides.pop("mqtt", {})}
    settings = load_settings(data_dir=tmp_path / "data", simulate=True, http={"port": 0},
                             locker=locker, mqtt=mqtt, **overrides)
    controller = build_controller(settings)
    controller.start()
    app = create_app(controller)
    server = create_server(app, host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=serve_until_closed, args=(server,), name="waitress",
                              daemon=True)
    thread.start()
    try:
        yield Kiosk(controller, simulator, app, f"http://127.0.0.1:{server.effective_port}")
    finally:
        app.extensions["edge"].services.live.stop()  # open event streams end before the server closes
        server.task_dispatcher.shutdown(timeout=5)
        server.close()
        thread.join(5)
        controller.stop()
        simulator.stop()


@pytest.fixture
def page(browser: Any, kiosk: Kiosk) -> Iterator[Any]:
    context = browser.new_context(viewport=LANDSCAPE, base_url=kiosk.url, locale="zh-CN")
    context.set_default_timeout(10_000)
    opened = context.new_page()
    yield opened
    context.close()


def shoot(page: Any, name: str) -> None:
    """Screenshots for a reviewer, landscape and portrait (artifacts/ is gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-1280x800.png"), full_page=True)
    page.set_viewport_size(PORTRAIT)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-1080x1920.png"), full_page=True)
    page.set_viewport_size(LANDSCAPE)


def assert_accessible(page: Any) -> None:
    """axe-core in the page: no serious or critical violations."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [f"{v['id']} ({v['impact']}): {v['help']} -> "
           f"{[n['target'] for n in v['nodes']][:3]}"
           for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, "\n".join(bad)


def type_on_keypad(page: Any, digits: str) -> None:
    for digit in digits:
        page.locator(".keypad").get_by_role("button", name=digit, exact=True).click()
