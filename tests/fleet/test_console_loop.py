"""A letter and a found item, end to end on real parts: a real kiosk (edge controller) writes
a letter to the secretary -> Mosquitto -> fleet ingest -> PostgreSQL -> the console, where the
station's community staff (and not another community's) reads it and replies -> request.update
on the station's command topic -> the kiosk's 我的服务 shows the reply. Then staff publish a
found item -> catalogue.sync -> the kiosk's 失物招领 lists it; "returned" -> it is gone."""
from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timezone

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge.app import build_controller
from edge.community import Resident
from fleet.commands import CommandSender
from fleet.console import accounts
from fleet.console.app import create_app
from fleet.console.catalogue import save_catalogue
from simulators.cloud import load_catalogue
from tests.support.bridge import DEVICE, SITE, edge_settings
from tests.support.fleet import count, wait_until

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(240)]
PASSWORD = "correct horse battery"


def now() -> datetime:
    return datetime.now(timezone.utc)


class StationTap:
    """Another subscriber on the station's command topics: what the platform sent it, as sent."""

    def __init__(self, broker) -> None:  # noqa: ANN001
        self.commands: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="station-tap",
                                  protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_connect = lambda c, *_a: c.subscribe(f"edge/v1/{SITE}/{DEVICE}/cmd/#", qos=1)
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.on_message = self._message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _message(self, _c, _u, message) -> None:  # noqa: ANN001
        with self._lock:
            self.commands.append((message.topic, json.loads(message.payload)))

    def named(self, name: str) -> list[dict]:
        with self._lock:
            return [payload for topic, payload in self.commands if topic.endswith(f"/cmd/{name}")]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def console_login(app, username: str):  # noqa: ANN001
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    assert client.post("/login", data={"username": username, "password": PASSWORD,
                                       "csrf_token": token}).status_code == 302
    return client


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_a_letter_and_a_found_item_go_round_between_kiosk_and_console(tmp_path, broker, fleet_settings, pg,
                                                                       start_worker) -> None:
    with pg.transaction():
        district = accounts.add_unit(pg, "大鹏新区", "district")
        street = accounts.add_unit(pg, "南澳街道", "street", district)
        community = accounts.add_unit(pg, "南澳社区", "community", street)
        neighbour = accounts.add_unit(pg, "水头沙社区", "community", street)
        accounts.assign_station(pg, SITE, DEVICE, community)
        accounts.assign_station(pg, "other-site", "kiosk-01", neighbour)
        staff_id = accounts.add_staff(pg, "li", "李社工", PASSWORD, community)
        accounts.add_staff(pg, "wang", "王社工", PASSWORD, neighbour)
    start_worker(0)
    sender = CommandSender(fleet_settings, now=now).start()
    tap = StationTap(broker)
    wait_until(tap.subscribed.is_set, what="the tap on the station's commands")
    settings = edge_settings(tmp_path / "edge", broker)
    settings.simulate = True
    controller = build_controller(settings)
    controller.start()
    try:
        wait_until(controller.services.bridge.connected.is_set, what="the kiosk online")
        catalogue = load_catalogue(None, SITE)
        version = save_catalogue(pg, accounts.staff_by_id(pg, staff_id), SITE, DEVICE, catalogue, now())
        pg.commit()
        sender.wake()
        wait_until(lambda: controller.services.catalogue.version() == version, what="catalogue synced")

        # A resident writes to the secretary at the kiosk.
        resident = Resident("res-loop", "王*明", "138****5678")
        requests = controller.services.requests
        sent = requests.submit(resident, "letter", "小区东门的路灯坏了一周了，晚上很黑。", None, None)
        wait_until(lambda: count(pg, "SELECT count(*) FROM help_requests WHERE request_id = %s",
                                 sent.request_id) == 1, what="the letter ingested")

        app = create_app(fleet_settings, now=now, on_command=sender.wake)
        li, wang = console_login(app, "li"), console_login(app, "wang")
        mailbox = li.get("/mailbox").get_data(as_text=True)
        assert sent.request_id in mailbox and "小区东门的路灯坏了" in mailbox and "已验证身份的居民" in mailbox
        assert sent.request_id not in wang.get("/mailbox").get_data(as_text=True)
        assert wang.get(f"/requests/{SITE}/{DEVICE}/{sent.request_id}").status_code == 404

        letter_page = li.get(f"/requests/{SITE}/{DEVICE}/{sent.request_id}").get_data(as_text=True)
        answer = li.post(f"/requests/{SITE}/{DEVICE}/{sent.request_id}",
                         data={"status": "done", "reply": "已报修，明天修好。", "back": "detail",
                               "csrf_token": csrf(letter_page)})
        assert answer.status_code == 302
        [update] = wait_until(lambda: tap.named("request.update"), what="request.update on the station's topic")
        assert update["data"] == {"request_id": sent.request_id, "status": "done", "reply": "已报修，明天修好。",
                                  "staff": "李社工"}
        followed = wait_until(lambda: next((f for f in requests.follow_ups_of("res-loop")
                                            if f.item_id == sent.request_id and f.reply), None),
                              what="the reply in the kiosk's 我的服务")
        assert (followed.status, followed.reply, followed.staff) == ("done", "已报修，明天修好。", "李社工")

        # Staff publish a found item to the station; the kiosk lists it under 失物招领.
        found_page = li.get("/lost-found").get_data(as_text=True)
        li.post("/lost-found/items", data={"station": f"{SITE}/{DEVICE}", "item": "红色儿童自行车",
                                           "where": "3栋楼下", "claim_at": "服务站一楼前台",
                                           "csrf_token": csrf(found_page)})
        item_id = wait_until(lambda: count(pg, "SELECT count(*) FROM found_items") and
                             pg.execute("SELECT id FROM found_items").fetchone()[0], what="the item recorded")

        def kiosk_found() -> set[str]:
            return {n.id for n in controller.services.catalogue.notices(kind="found")}

        wait_until(lambda: item_id in kiosk_found(), what="the kiosk lists the found item")
        assert any(item_id in json.dumps(p["data"]["notices"]) for p in tap.named("catalogue.sync"))
        li.post(f"/lost-found/items/{item_id}/returned", data={"csrf_token": csrf(found_page)})
        wait_until(lambda: item_id not in kiosk_found(), what="the returned item gone from the kiosk")
        assert kiosk_found(), "the demo catalogue's other found items stay"
        wait_until(lambda: count(pg, "SELECT count(*) FROM outgoing_commands WHERE sent_at IS NULL") == 0,
                   what="commands marked sent")
    finally:
        controller.stop()
        sender.stop()
        tap.stop()
