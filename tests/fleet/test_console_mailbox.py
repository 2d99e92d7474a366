"""书记信箱 in the staff console against real PostgreSQL: letters (requests of category
`letter`, ingested as the edge publishes them) listed for the staff of their station only,
newest first, phones masked; a reply queued as request.update; pages Chinese first."""
from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from fleet.console.app import create_app
from fleet.settings import load_settings
from tests.fleet.test_console import T0, clock, csrf, event, ingest, login, tree  # noqa: F401 - fixtures

CONSOLE = Path(__file__).resolve().parents[2] / "fleet" / "console"
CATALOGUE = CONSOLE / "translations" / "zh_Hans_CN" / "LC_MESSAGES"


@pytest.fixture
def app(database_url: str, clock):  # noqa: ANN001, F811
    return create_app(load_settings(database_url=database_url), now=clock.now)  # Chinese: the default


def letter(site: str, seq: int, request_id: str, text: str, minutes: int = 0, phone: str | None = "138****5678"):
    data = {"request_id": request_id, "category": "letter", "priority": "normal", "description": text,
            "address": None, "resident_id": "res-1", "submitted_at": (T0 + timedelta(minutes=minutes)).isoformat()}
    if phone:
        data["phone_masked"] = phone
    return event(site, seq, "request.submitted", data, T0 + timedelta(minutes=minutes))


def page(client, path: str) -> str:  # noqa: ANN001
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def test_letters_show_to_the_staff_of_their_station_newest_first_with_phones_masked(app, tree, pg) -> None:  # noqa: F811
    ingest(pg, letter("site-1", 1, "lt-old", "楼道灯坏了很久，请尽快修。"),
           letter("site-1", 2, "lt-new", "建议增设长椅，有事请回电13912345678。", minutes=90),
           event("site-1", 3, "request.submitted", {"request_id": "rq-repair", "category": "repair"}, T0),
           letter("site-3", 1, "lt-kuichong", "葵涌社区的来信"))
    own, neighbour, street, other_street = (app.test_client() for _ in range(4))
    for client, user in ((own, "c1"), (neighbour, "c2"), (street, "s1"), (other_street, "s2")):
        login(client, user)

    mine = page(own, "/mailbox")
    assert "书记信箱" in mine and "查看并回复" in mine
    assert mine.index("lt-new") < mine.index("lt-old")  # newest first
    assert "lt-kuichong" not in mine and "rq-repair" not in mine
    assert "138****5678" in mine and "139****5678" in mine and "13912345678" not in mine
    assert "新提交" in mine  # the status, in words
    assert "lt-new" not in page(neighbour, "/mailbox")  # same street, another community
    assert "lt-new" in page(street, "/mailbox") and "lt-kuichong" not in page(street, "/mailbox")
    assert "lt-kuichong" in page(other_street, "/mailbox") and "lt-new" not in page(other_street, "/mailbox")
    # One station of theirs only; a station not theirs is not there at all.
    assert "lt-kuichong" not in page(street, "/mailbox?station=site-1/kiosk-01")
    assert street.get("/mailbox?station=site-3/kiosk-01").status_code == 404
    # Letters have their own tab: the help requests' list keeps the other categories.
    requests = page(own, "/requests")
    assert "rq-repair" in requests and "lt-new" not in requests
    detail = page(own, "/requests/site-1/kiosk-01/lt-new")
    assert "建议增设长椅" in detail and "139****5678" in detail and "13912345678" not in detail


def test_a_reply_to_a_letter_is_queued_as_request_update_and_shown_with_the_letter(app, tree, pg) -> None:  # noqa: F811
    from cloud_bridge import contract

    ingest(pg, letter("site-1", 1, "lt-1", "小区门口的路灯不亮。"))
    client = app.test_client()
    login(client, "c1")
    token = csrf(page(client, "/requests/site-1/kiosk-01/lt-1"))
    response = client.post("/requests/site-1/kiosk-01/lt-1", follow_redirects=True,
                           data={"status": "done", "reply": "已联系物业，本周内修好。", "back": "detail",
                                 "csrf_token": token})
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and "lt-1：已办结，已发往服务站。" in text
    assert "已联系物业，本周内修好。" in text and "staff C1" in text  # the reply, in the letter's history
    assert "已办结" in page(client, "/mailbox")
    pg.rollback()
    [(topic, payload)] = pg.execute("SELECT topic, payload FROM outgoing_commands").fetchall()
    assert topic == "edge/v1/site-1/kiosk-01/cmd/request.update"
    assert payload["data"] == {"request_id": "lt-1", "status": "done", "reply": "已联系物业，本周内修好。",
                               "staff": "staff C1"}
    contract.validate("cmd.request.update", payload)


def test_staff_without_the_station_cannot_read_or_answer_its_letters(app, tree, pg) -> None:  # noqa: F811
    ingest(pg, letter("site-1", 1, "lt-1", "给书记的一封信"))
    for user in ("c2", "c3", "s2"):
        client = app.test_client()
        login(client, user)
        token = csrf(page(client, "/mailbox"))
        assert client.get("/requests/site-1/kiosk-01/lt-1").status_code == 404
        answer = client.post("/requests/site-1/kiosk-01/lt-1",
                             data={"status": "done", "reply": "越权回复", "back": "detail", "csrf_token": token})
        assert answer.status_code == 404, user
    pg.rollback()
    assert pg.execute("SELECT count(*) FROM outgoing_commands").fetchone()[0] == 0
    assert pg.execute("SELECT status FROM help_requests").fetchone()[0] == "new"


def test_the_console_is_chinese_first_and_english_on_request(app, tree, pg) -> None:  # noqa: F811
    ingest(pg, letter("site-1", 1, "lt-1", "一封信"))
    client = app.test_client()
    first = page(client, "/login")
    assert '<html lang="zh-CN">' in first and "服务站管理后台" in first and "用户名" in first
    login(client, "c1")
    token = csrf(page(client, "/mailbox"))
    client.post("/requests/site-1/kiosk-01/lt-1", data={"status": "in_progress", "csrf_token": token})
    refused = client.post("/requests/site-1/kiosk-01/lt-1", follow_redirects=True,
                          data={"status": "received", "csrf_token": token}).get_data(as_text=True)
    assert "“处理中”状态的事项不能改为“已受理”。" in refused  # translated, full-width punctuation

    client.get("/language/en")
    english = page(client, "/mailbox")
    assert '<html lang="en">' in english and "Secretary's mailbox" in english and "in progress" in english
    client.post("/logout", data={"csrf_token": csrf(english)})
    assert "User name" in page(client, "/login")  # the choice outlives the session
    assert app.test_client().get("/language/fr").status_code == 404


def test_every_console_text_has_a_chinese_translation_and_the_mo_is_compiled() -> None:
    with (CATALOGUE / "messages.po").open("rb") as handle:
        catalogue = read_po(handle)
    with (CATALOGUE / "messages.mo").open("rb") as handle:
        compiled = read_mo(handle)
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    keywords = {"_": None, "N_": None, "gettext": None, "Refused": None}
    used = {message[2] for message in extract_from_dir(str(CONSOLE), method_map, keywords=keywords)}
    assert "Secretary's mailbox" in used and "a request that is %(state)s cannot become %(status)s" in used
    untranslated = sorted(m for m in used if not (catalogue.get(m) and catalogue.get(m).string))
    assert not untranslated, untranslated
    for message in catalogue:
        if message.id:
            assert compiled.get(message.id) is not None and compiled.get(message.id).string == message.string, \
                message.id
        words = re.sub(r"%\(\w+\)[sd]", "", message.string or "")
        if any("\u4e00" <= ch <= "\u9fff" for ch in words):  # Chinese text: full-width punctuation
            assert not any(mark in words for mark in (":", ",", "(", ")", ";")), message.string
