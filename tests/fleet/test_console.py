"""The staff console against real PostgreSQL: three levels of accounts, each seeing only its
stations; every route behind a login and CSRF; escalation by a fake clock."""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone

import psycopg
import pytest

from edge.clock import FakeClock
from fleet.console import accounts
from fleet.console.app import PUBLIC_ENDPOINTS, create_app
from fleet.messages import parse
from fleet.settings import load_settings
from fleet.store import IngestStore

PASSWORD = "correct horse battery"
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def tree(pg: psycopg.Connection) -> dict[str, int]:
    """District > streets S1, S2 > communities C1, C2 (S1), C3 (S2); one station each."""
    ids: dict[str, int] = {}
    with pg.transaction():
        ids["D"] = accounts.add_unit(pg, "大鹏新区", "district")
        ids["S1"] = accounts.add_unit(pg, "南澳街道", "street", ids["D"])
        ids["S2"] = accounts.add_unit(pg, "葵涌街道", "street", ids["D"])
        ids["C1"] = accounts.add_unit(pg, "南澳社区", "community", ids["S1"])
        ids["C2"] = accounts.add_unit(pg, "水头沙社区", "community", ids["S1"])
        ids["C3"] = accounts.add_unit(pg, "葵涌社区", "community", ids["S2"])
        for n, unit in enumerate(("C1", "C2", "C3"), start=1):
            accounts.assign_station(pg, f"site-{n}", "kiosk-01", ids[unit])
        for unit in ids:
            accounts.add_staff(pg, unit.lower(), f"staff {unit}", PASSWORD, ids[unit])
    return ids


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def app(database_url: str, clock: FakeClock):
    settings = load_settings(database_url=database_url)
    app = create_app(settings, now=clock.now)
    app.config["CONSOLE_DEFAULT_LANGUAGE"] = "en"  # these tests read the English wording
    return app


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client, username: str, password: str = PASSWORD):  # noqa: ANN001
    token = csrf(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def event(site: str, seq: int, type_: str, data: dict, ts: datetime) -> object:
    body = {"message_id": str(uuid.uuid4()), "seq": seq, "type": type_, "ts": ts.isoformat(),
            "site_id": site, "device_id": "kiosk-01", "data": data}
    return parse(f"edge/v1/{site}/kiosk-01/evt/{type_}", json.dumps(body).encode())


def ingest(pg: psycopg.Connection, *items: object) -> None:
    IngestStore(private_key=None, notifier=None, now=lambda: T0).write_batch(pg, list(items))


def test_each_level_sees_its_own_stations_and_those_below(app, tree) -> None:
    seen = {}
    for user in ("d", "s1", "s2", "c1", "c3"):
        client = app.test_client()
        assert login(client, user).status_code == 302
        html = client.get("/").get_data(as_text=True)
        seen[user] = sorted(re.findall(r"<td>(site-\d)</td>", html))
    assert seen == {"d": ["site-1", "site-2", "site-3"], "s1": ["site-1", "site-2"], "s2": ["site-3"],
                    "c1": ["site-1"], "c3": ["site-3"]}


def test_every_route_but_login_needs_a_signed_in_staff_member(app, tree) -> None:
    client = app.test_client()
    app.config["WTF_CSRF_ENABLED"] = False  # reach the login check itself
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        path = re.sub(r"<[^>]+>", "x", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = client.open(path, method=method)
            assert response.status_code == 302 and response.location.endswith("/login"), (method, path)


def test_a_wrong_password_is_refused_and_five_lock_the_account(app, tree) -> None:
    client = app.test_client()
    assert login(client, "c1", "wrong password").status_code == 200
    for _ in range(4):
        login(client, "c1", "wrong password")
    assert login(client, "c1").status_code == 200  # locked: even the right password waits
    assert login(app.test_client(), "c2").status_code == 302  # others are not


def test_passwords_are_stored_as_argon2id_hashes(pg, tree) -> None:
    hashes = [row[0] for row in pg.execute("SELECT password_hash FROM staff")]
    assert hashes and all(h.startswith("$argon2id$") and PASSWORD not in h for h in hashes)


def test_a_form_without_its_csrf_token_is_refused(app, tree, pg) -> None:
    ingest(pg, event("site-1", 1, "booking.requested", {"booking_id": "bk-1", "venue_id": "v1"}, T0))
    client = app.test_client()
    login(client, "c1")
    assert client.post("/bookings/bk-1/decide", data={"decision": "approved"}).status_code == 400
    pg.rollback()
    assert pg.execute("SELECT state FROM bookings").fetchone()[0] == "pending"


def test_staff_cannot_act_on_another_communitys_booking(app, tree, pg) -> None:
    ingest(pg, event("site-1", 1, "booking.requested", {"booking_id": "bk-1", "venue_id": "v1"}, T0))
    client = app.test_client()
    login(client, "c3")
    token = csrf(client.get("/bookings").get_data(as_text=True))
    assert "bk-1" not in client.get("/bookings").get_data(as_text=True)
    response = client.post("/bookings/bk-1/decide", data={"decision": "approved", "csrf_token": token})
    assert response.status_code == 404
    pg.rollback()
    assert pg.execute("SELECT count(*) FROM outgoing_commands").fetchone()[0] == 0


def requests_page(client) -> str:  # noqa: ANN001
    return client.get("/requests").get_data(as_text=True)


def test_an_unhandled_request_turns_red_after_24_hours_and_escalates_to_street_then_district(
        app, tree, pg, clock) -> None:
    ingest(pg, event("site-1", 1, "request.submitted", {"request_id": "rq-9", "category": "repair"}, T0))
    community, street, district, other_street = (app.test_client() for _ in range(4))
    for client, user in ((community, "c1"), (street, "s1"), (district, "d"), (other_street, "s2")):
        login(client, user)

    clock.advance(hours=23)
    assert 'class="request"' in requests_page(community) and 'class="request overdue"' not in requests_page(community)
    clock.advance(hours=2)  # 25 h
    assert 'class="request overdue"' in requests_page(community)
    assert "escalated to you" in requests_page(street)
    assert "escalated to you" not in requests_page(district)
    assert "rq-9" not in requests_page(other_street)
    pg.rollback()
    assert pg.execute("SELECT escalated_to FROM help_requests").fetchone()[0] == "street"
    clock.advance(hours=24)  # 49 h
    assert "escalated to you" in requests_page(district)
    pg.rollback()
    assert pg.execute("SELECT escalated_to FROM help_requests").fetchone()[0] == "district"


def test_working_a_request_stops_its_clock_and_queues_request_update(app, tree, pg, clock) -> None:
    from cloud_bridge import contract

    ingest(pg, event("site-2", 1, "request.submitted", {"request_id": "rq-1", "category": "errand"}, T0))
    client = app.test_client()
    login(client, "c2")
    token = csrf(requests_page(client))
    client.post("/requests/site-2/kiosk-01/rq-1", data={"status": "in_progress", "reply": "马上到",
                                                         "csrf_token": token})
    clock.advance(hours=30)
    page = requests_page(client)
    assert 'class="request overdue"' not in page and "马上到" in page
    refused = client.post("/requests/site-2/kiosk-01/rq-1", data={"status": "received", "csrf_token": token},
                          follow_redirects=True)
    assert "cannot become received" in refused.get_data(as_text=True)
    pg.rollback()
    [(topic, payload)] = pg.execute("SELECT topic, payload FROM outgoing_commands").fetchall()
    assert topic == "edge/v1/site-2/kiosk-01/cmd/request.update"
    assert payload["data"] == {"request_id": "rq-1", "status": "in_progress", "reply": "马上到", "staff": "staff C2"}
    contract.validate("cmd.request.update", payload)


def test_a_street_notice_reaches_the_catalogues_of_its_stations_only(app, tree, pg) -> None:
    from cloud_bridge import contract

    example = json.loads((contract.EXAMPLES_DIR / "catalogue.json").read_text())
    street, community = app.test_client(), app.test_client()
    login(street, "s1")
    login(community, "c1")
    page = community.get("/stations/site-1/kiosk-01/catalogue").get_data(as_text=True)
    bad = community.post("/stations/site-1/kiosk-01/catalogue",
                         data={"catalogue": "{not json", "csrf_token": csrf(page)}, follow_redirects=True)
    assert "not JSON" in bad.get_data(as_text=True)
    community.post("/stations/site-1/kiosk-01/catalogue",
                   data={"catalogue": json.dumps(example), "csrf_token": csrf(page)})
    assert community.get("/stations/site-3/kiosk-01/catalogue").status_code == 404  # another street's

    page = street.get("/notices").get_data(as_text=True)
    done = street.post("/notices", data={"title": "停水通知", "body": "12月2日 9:00-12:00 停水。",
                                         "csrf_token": csrf(page)}, follow_redirects=True)
    text = done.get_data(as_text=True)
    assert "Notice sent to 1 station(s)" in text and "site-2/kiosk-01" in text  # site-2 has no catalogue yet
    pg.rollback()
    commands = pg.execute("SELECT topic, payload FROM outgoing_commands ORDER BY id").fetchall()
    assert [topic for topic, _ in commands] == ["edge/v1/site-1/kiosk-01/cmd/catalogue.sync"] * 2
    latest = commands[-1][1]
    contract.validate("cmd.catalogue.sync", latest)
    assert latest["data"]["notices"][0]["title"]["zh"] == "停水通知"
    assert latest["data"]["notices"][0]["office"]["zh"] == "南澳街道"
    assert len(latest["data"]["notices"]) == len(example["notices"]) + 1
    assert latest["data"]["version"] != commands[0][1]["data"]["version"]
