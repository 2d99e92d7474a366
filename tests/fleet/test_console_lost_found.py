"""失物招领 in the staff console against real PostgreSQL: residents' "I found something"
reports listed for their station's staff; a found item published to a station becomes a
`found` notice in its catalogue.sync (what the kiosk lists); "returned" sends the catalogue
again without it; staff of other stations get 404."""
from __future__ import annotations

import json
import re

import pytest

from cloud_bridge import contract
from edge.community.catalogue import validate_payload
from fleet.console import accounts
from fleet.console.app import create_app
from fleet.console.catalogue import save_catalogue
from fleet.settings import load_settings
from tests.fleet.test_console import T0, clock, csrf, event, ingest, login, tree  # noqa: F401 - fixtures


@pytest.fixture
def app(database_url: str, clock):  # noqa: ANN001, F811
    return create_app(load_settings(database_url=database_url), now=clock.now)


@pytest.fixture
def with_catalogue(pg, tree) -> dict:  # noqa: ANN001, F811
    """site-1 has the contract's example catalogue on the platform, plus a found item of its own."""
    example = json.loads((contract.EXAMPLES_DIR / "catalogue.json").read_text())
    example["notices"].append({"id": "found-umbrella", "kind": "found", "title": {"zh": "黑色长柄雨伞一把"},
                               "body": {"zh": "二楼会议室"}, "published_at": "2026-11-28T08:00:00Z",
                               "office": {"zh": "服务站一楼前台认领"}})
    save_catalogue(pg, accounts.staff_by_id(pg, 1), "site-1", "kiosk-01", example, T0)  # the district's staff
    pg.execute("DELETE FROM outgoing_commands")
    pg.commit()
    return example


def found_report(site: str, seq: int, request_id: str, what: str, where: str):
    return event(site, seq, "request.submitted",
                 {"request_id": request_id, "category": "found_item", "priority": "normal", "description": what,
                  "address": where, "phone_masked": "138****5678", "resident_id": "res-1"}, T0)


def commands(pg) -> list[tuple[str, dict]]:  # noqa: ANN001
    pg.rollback()
    return pg.execute("SELECT topic, payload FROM outgoing_commands ORDER BY id").fetchall()


def found_notices(payload: dict) -> dict[str, dict]:
    return {n["id"]: n for n in payload["data"]["notices"] if n["kind"] == "found"}


def test_a_report_published_as_a_found_item_reaches_the_station_in_its_catalogue(
        app, tree, pg, with_catalogue) -> None:  # noqa: F811
    ingest(pg, found_report("site-1", 1, "fd-1", "一把蓝色雨伞", "二楼会议室"),
           found_report("site-3", 1, "fd-3", "葵涌的钥匙", "门口"))
    client = app.test_client()
    login(client, "c1")
    listing = client.get("/lost-found").get_data(as_text=True)
    assert "失物招领" in listing and "一把蓝色雨伞" in listing and "葵涌的钥匙" not in listing
    form = client.get("/lost-found?report=site-1/kiosk-01/fd-1").get_data(as_text=True)
    assert 'value="一把蓝色雨伞"' in form and 'value="二楼会议室"' in form and 'name="report" value="fd-1"' in form

    done = client.post("/lost-found/items", follow_redirects=True, data={
        "station": "site-1/kiosk-01", "item": "一把蓝色雨伞", "where": "二楼会议室", "claim_at": "服务站一楼前台",
        "contact": "0755-84401234", "report": "fd-1", "csrf_token": csrf(form)}).get_data(as_text=True)
    assert "「一把蓝色雨伞」已发布到 site-1/kiosk-01。" in done
    [(topic, payload)] = commands(pg)
    assert topic == "edge/v1/site-1/kiosk-01/cmd/catalogue.sync"
    contract.validate("cmd.catalogue.sync", payload)
    validate_payload(payload["data"])  # the kiosk's own check of a catalogue: it would take this one
    [new_id] = set(found_notices(payload)) - {n["id"] for n in with_catalogue["notices"]}
    notice = found_notices(payload)[new_id]
    assert notice["title"] == {"zh": "一把蓝色雨伞"} and notice["body"] == {"zh": "二楼会议室"}
    assert notice["office"] == {"zh": "服务站一楼前台"} and notice["contact"] == "0755-84401234"
    assert len(payload["data"]["notices"]) == len(with_catalogue["notices"]) + 1  # nothing else lost
    assert pg.execute("SELECT report_request_id, published_by FROM found_items WHERE id = %s",
                      (new_id,)).fetchone() == ("fd-1", "staff C1")
    page = client.get("/lost-found").get_data(as_text=True)
    assert f'data-item="{new_id}"' in page.split("正在招领")[1].split("居民报告")[0]


def test_an_item_marked_returned_leaves_the_stations_catalogue(app, tree, pg, with_catalogue) -> None:  # noqa: F811
    client = app.test_client()
    login(client, "c1")
    token = csrf(client.get("/lost-found").get_data(as_text=True))
    client.post("/lost-found/items", data={"station": "site-1/kiosk-01", "item": "身份证一张", "where": "快递柜旁",
                                           "claim_at": "社区工作站", "csrf_token": token})
    item_id = pg.execute("SELECT id FROM found_items").fetchone()[0]
    pg.rollback()
    done = client.post(f"/lost-found/items/{item_id}/returned", follow_redirects=True,
                       data={"note": "失主本人领取", "csrf_token": token}).get_data(as_text=True)
    assert "已标记为已归还" in done
    returned_part = done.split("最近归还")[1]
    assert f'data-item="{item_id}"' in returned_part and "失主本人领取" in returned_part
    published, withdrawn = commands(pg)
    assert item_id in found_notices(published[1]) and item_id not in found_notices(withdrawn[1])
    contract.validate("cmd.catalogue.sync", withdrawn[1])
    assert set(found_notices(withdrawn[1])) == {"found-umbrella"}  # only the returned one went
    again = client.post(f"/lost-found/items/{item_id}/returned", follow_redirects=True,
                        data={"csrf_token": token}).get_data(as_text=True)
    assert "该物品已标记为已归还。" in again and len(commands(pg)) == 2


def test_staff_without_the_station_cannot_publish_to_it_or_mark_its_items(app, tree, pg, with_catalogue) -> None:  # noqa: F811
    ingest(pg, found_report("site-1", 1, "fd-1", "钱包", "公交站"))
    own = app.test_client()
    login(own, "c1")
    token = csrf(own.get("/lost-found").get_data(as_text=True))
    own.post("/lost-found/items", data={"station": "site-1/kiosk-01", "item": "钱包", "where": "公交站",
                                        "claim_at": "前台", "csrf_token": token})
    item_id = pg.execute("SELECT id FROM found_items").fetchone()[0]
    pg.rollback()
    before = len(commands(pg))
    for user in ("c2", "c3", "s2"):
        other = app.test_client()
        login(other, user)
        page = other.get("/lost-found").get_data(as_text=True)
        assert "钱包" not in page and item_id not in page
        token = csrf(page)
        assert other.post("/lost-found/items", data={"station": "site-1/kiosk-01", "item": "x", "where": "y",
                                                     "claim_at": "z", "csrf_token": token}).status_code == 404
        assert other.post(f"/lost-found/items/{item_id}/returned", data={"csrf_token": token}).status_code == 404
        assert other.get("/lost-found?report=site-1/kiosk-01/fd-1").status_code == 404
    assert len(commands(pg)) == before
    assert pg.execute("SELECT returned_at FROM found_items").fetchone()[0] is None


def test_a_station_with_no_catalogue_on_the_platform_is_told_not_sent_half_a_catalogue(app, tree, pg) -> None:  # noqa: F811
    client = app.test_client()
    login(client, "c2")
    token = csrf(client.get("/lost-found").get_data(as_text=True))
    answer = client.post("/lost-found/items", follow_redirects=True, data={
        "station": "site-2/kiosk-01", "item": "眼镜", "where": "广场", "claim_at": "前台", "csrf_token": token})
    assert "site-2/kiosk-01 在平台上还没有目录，请先发送目录。" in answer.get_data(as_text=True)
    missing = client.post("/lost-found/items", follow_redirects=True, data={
        "station": "site-2/kiosk-01", "item": " ", "where": "广场", "claim_at": "前台", "csrf_token": token})
    assert "请填写物品、拾获地点和认领地点。" in missing.get_data(as_text=True)
    assert commands(pg) == [] and pg.execute("SELECT count(*) FROM found_items").fetchone()[0] == 0
    assert re.search(r"暂无正在招领的物品", client.get("/lost-found").get_data(as_text=True))
