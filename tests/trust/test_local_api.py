"""The local JSON API (issue 9, item 4): a credential only the controller's user and root can
read for calls that change state, loopback Host only, JSON only, a body size limit, and bad
JSON as a 400; the kiosk's own screens keep working without the credential."""
from __future__ import annotations

import stat

import pytest

from edge.kiosk_ui import create_app
from edge.kiosk_ui.guard import MAX_BODY_BYTES
from tests.support.station import COURIER_CODE


def unlock_frames(sim) -> int:
    return sum(1 for f in sim.frames_received if f.data[2] == 0x31)


@pytest.fixture
def anonymous(controller):
    """Any local user: can reach 127.0.0.1, cannot read the controller's api.token."""
    return create_app(controller).test_client()


def test_the_credential_is_a_0600_file_in_the_data_folder(controller, client):
    path = controller.settings.data_dir / "api.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text().strip()) >= 32


@pytest.mark.parametrize("path, body", [
    ("/api/diag/open", {"compartment": 3}),
    ("/api/diag/clear-fault", {"compartment": 3}),
    ("/api/locker/courier/login", {"code": COURIER_CODE}),
    ("/api/locker/pickup", {"code": "12345678"}),
    ("/api/locker/pickup/token", {"token": "P1.x.y"}),
])
def test_state_changing_calls_need_the_credential(anonymous, sim, path, body):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"}):
        reply = anonymous.post(path, json=body, headers=headers)
        assert reply.status_code == 401 and reply.json["error"]["code"] == "unauthorised"
    assert unlock_frames(sim) == 0


def test_with_the_credential_a_technician_opens_a_door(client, sim):
    reply = client.post("/api/diag/open", json={"compartment": 3, "who": "tech"})
    assert reply.status_code == 200 and reply.json["opened"]
    assert unlock_frames(sim) == 1


def test_diagnostics_are_for_technicians_only_even_reading(anonymous, client):
    assert anonymous.get("/api/diag/events").status_code == 401
    assert client.get("/api/diag/events").status_code == 200
    assert anonymous.get("/api/locker/compartments").status_code == 200  # the public view stays


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.evil.example",
                                  "10.0.0.1", "localhost.evil.example:80"])
def test_a_foreign_host_header_opens_nothing(client, sim, host):
    reply = client.post("/api/diag/open", json={"compartment": 3}, headers={"Host": host})
    assert reply.status_code == 421
    assert client.get("/", headers={"Host": host}).status_code == 421  # screens too (DNS rebinding)
    assert unlock_frames(sim) == 0


def test_loopback_host_names_are_served(client):
    for host in ("127.0.0.1", "localhost", "127.0.0.1:8080", "localhost:8080", "[::1]:8080"):
        assert client.get("/api/locker/compartments", headers={"Host": host}).status_code == 200


def test_only_application_json(client, sim):
    for content_type in ("application/merge-patch+json", "application/vnd.x+json", "text/plain",
                         "application/x-www-form-urlencoded"):
        reply = client.post("/api/diag/open", data='{"compartment": 3}', content_type=content_type)
        assert reply.status_code == 415, content_type
    assert unlock_frames(sim) == 0


def test_body_size_limit_on_every_route(client):
    big = "x" * (MAX_BODY_BYTES + 1)
    assert client.post("/api/diag/open", data='{"a": "%s"}' % big, content_type="application/json").status_code == 413
    assert client.post("/pickup/code", data={"code": big}).status_code == 413
    assert client.post("/live/scanner", data='{"code": "%s"}' % big,
                       content_type="application/json").status_code == 413


@pytest.mark.parametrize("body", ["[" * 5000 + "]" * 5000, '{"compartment": ', "\xff\xfe", "null", "[]"])
def test_malformed_or_deep_json_is_a_400(client, sim, body):
    reply = client.post("/api/diag/open", data=body.encode("latin-1"), content_type="application/json")
    assert reply.status_code == 400
    assert unlock_frames(sim) == 0


def test_the_kiosk_screens_work_without_the_credential(anonymous):
    """The kiosk browser (another user) never holds api.token: its screens post CSRF-checked
    forms to screen routes, which call the services in-process, not the JSON API."""
    home = anonymous.get("/")
    assert home.status_code == 200
    page = anonymous.get("/pickup/")
    assert page.status_code == 200 and b"csrf_token" in page.data
    import re

    token = re.search(rb'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page.data)
    assert token, "the pickup form carries a CSRF token"
    reply = anonymous.post("/pickup/code", data={"code": "12345678", "csrf_token": token.group(1).decode()})
    assert reply.status_code in (200, 302)  # a wrong code: a message on the screen, not a 401
    assert anonymous.post("/pickup/code", data={"code": "12345678"}).status_code in (302, 400)  # no CSRF
