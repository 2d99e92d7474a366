"""The screens' server side without a browser: CSRF, the server's own end of a visit, the
live stream over waitress, presence from the GPIO sensor, translations."""
from __future__ import annotations

import http.client
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask.testing import FlaskClient
from gpiozero.pins.mock import MockFactory

from edge.app import Controller
from edge.clock import FakeClock
from tests.support.screens import app, client, controller, csrf_of, pins  # noqa: F401 - fixtures
from tests.support.station import serve_until_closed

pytestmark = pytest.mark.timeout(60)
KIOSK_UI = Path(__file__).resolve().parents[2] / "edge" / "kiosk_ui"
CATALOGUE = KIOSK_UI / "translations" / "zh_Hans_CN" / "LC_MESSAGES"


def test_a_form_without_its_csrf_token_changes_nothing(client: FlaskClient) -> None:
    client.get("/")
    refused = client.post("/lang", data={"next": "/"}, follow_redirects=True)
    assert '<html lang="zh-CN"' in refused.get_data(as_text=True)
    assert "页面停留时间过长" in refused.get_data(as_text=True)
    accepted = client.post("/lang", data={"next": "/", "csrf_token": csrf_of(client)},
                           follow_redirects=True)
    assert '<html lang="en"' in accepted.get_data(as_text=True)


def test_the_server_forgets_a_visit_nobody_ended(client: FlaskClient, controller: Controller,
                                                 clock: FakeClock) -> None:
    client.post("/lang", data={"next": "/", "csrf_token": csrf_of(client)})
    assert '<html lang="en"' in client.get("/").get_data(as_text=True)
    kiosk = controller.settings.kiosk
    clock.advance(seconds=kiosk.idle_timeout_s + kiosk.idle_warning_s)
    assert '<html lang="en"' in client.get("/").get_data(as_text=True)  # a touch keeps it
    clock.advance(seconds=kiosk.idle_timeout_s + kiosk.idle_warning_s + 16)
    assert '<html lang="zh-CN"' in client.get("/").get_data(as_text=True)


def test_watching_live_state_does_not_keep_a_visit_alive(client: FlaskClient, controller: Controller,
                                                         clock: FakeClock) -> None:
    client.post("/lang", data={"next": "/", "csrf_token": csrf_of(client)})
    kiosk = controller.settings.kiosk
    for _ in range(3):
        clock.advance(seconds=(kiosk.idle_timeout_s + kiosk.idle_warning_s) / 2)
        assert client.get("/live/state?topic=presence").status_code == 200
    assert '<html lang="zh-CN"' in client.get("/").get_data(as_text=True)


def test_live_topics_of_someone_else_are_not_found(client: FlaskClient) -> None:
    assert client.get("/live/state?topic=pickup:parcel-1").status_code == 404
    assert client.get("/live/state?topic=deposit:dep-1").status_code == 404
    assert client.get("/live/state?topic=bookings").status_code == 404
    assert client.get("/live/state?topic=whatever").status_code == 404


def test_scanner_reading_needs_a_code(client: FlaskClient) -> None:
    for body in (None, {"code": ""}, {"code": 12}, {"code": "x" * 5000}):
        answer = client.post("/live/scanner", json=body)
        assert answer.status_code == 400 and "code" in answer.get_json()["error"]
    assert client.post("/live/scanner", json={"code": "P1.abc"}).status_code == 200
    assert client.get("/live/state?topic=scan").get_json()["scan"] == "ready"


def test_presence_sensor_reaches_the_live_state(client: FlaskClient, controller: Controller,
                                                pins: MockFactory) -> None:
    assert client.get("/live/state").get_json()["presence"] is False
    pins.pin(controller.settings.gpio.presence_pin).drive_high()
    assert client.get("/live/state").get_json()["presence"] is True


def test_event_stream_is_flushed_through_waitress(app: Any) -> None:
    """ADR 0062: waitress writes each event as it is yielded; no buffering to wait out."""
    from waitress.server import create_server

    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=serve_until_closed, args=(server,), daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=10)
        connection.request("GET", "/live/stream?topic=presence")
        response = connection.getresponse()
        assert response.getheader("Content-Type").startswith("text/event-stream")
        assert read_event(response) == {"presence": False}
        app.extensions["edge"].services.live.presence_seen()
        assert read_event(response) == {"presence": True}
        connection.close()
    finally:
        app.extensions["edge"].services.live.stop()
        server.task_dispatcher.shutdown(timeout=5)
        server.close()


def read_event(response: http.client.HTTPResponse) -> dict[str, Any]:
    """The next `event: state` of a stream (heartbeats skipped); a socket timeout fails the test."""
    while True:
        line = response.fp.readline().decode()
        if line.startswith("data: "):
            return json.loads(line[len("data: "):])


def test_every_screen_text_has_a_chinese_translation_and_the_mo_is_compiled() -> None:
    with (CATALOGUE / "messages.po").open("rb") as handle:
        catalogue = read_po(handle)
    with (CATALOGUE / "messages.mo").open("rb") as handle:
        compiled = read_mo(handle)
    method_map = [("screens/**.py", "python"), ("templates/**.html", "jinja2")]
    keywords = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
    used = {message[2] if isinstance(message[2], str) else message[2][0]
            for message in extract_from_dir(str(KIOSK_UI), method_map, keywords=keywords)}
    untranslated = sorted(m for m in used if not (catalogue.get(m) and catalogue.get(m).string))
    assert not untranslated, untranslated
    def text(string: Any) -> Any:
        return tuple(string) if isinstance(string, (list, tuple)) else string

    for message in catalogue:
        if message.id:
            built = compiled.get(message.id)
            assert built is not None and text(built.string) == text(message.string), message.id


def test_errors_are_pages_in_plain_words_except_under_the_api(client: FlaskClient) -> None:
    missing = client.get("/notices/no-such-notice")
    assert missing.status_code == 404
    assert "没有找到这个页面" in missing.get_data(as_text=True)
    assert "返回首页" in missing.get_data(as_text=True)
    no_locker = client.get("/pickup/door/p-1")  # this box was built without a locker
    assert no_locker.status_code in (302, 503)
    api = client.get("/api/no-such-thing")
    assert api.status_code == 404 and "没有找到" not in api.get_data(as_text=True)
