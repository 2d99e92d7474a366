"""Refusal at the door: the resident refuses the parcel after its door opens (it stays in, or
goes back in), the door closes, the parcel is `refused` and waits for the courier who brought
it; refusing just after taking it out reopens the door; a jammed door refuses the refusal."""
from __future__ import annotations

import pytest

from cloud_bridge import contract
from edge.clock import iso_utc
from tests.support.station import COURIER_ID, audits, deposit_parcel, outbox, pickup_state, wait_until

pytestmark = pytest.mark.timeout(90)


def open_for_pickup(client, code):
    reply = client.post("/api/locker/pickup", json={"code": code})
    assert reply.status_code == 200, reply.json
    return reply.json


def test_refused_at_the_open_door_then_returned_by_its_courier(controller, client, courier, sim):
    spec, deposited = deposit_parcel(controller, client, courier, sim)
    pickup = open_for_pickup(client, deposited["pickup_code"])
    bad = client.post(f"/api/locker/pickups/{pickup['pickup_id']}/refuse", json={"reason": "ugly"})
    assert bad.status_code == 400 and bad.json["error"]["code"] == "bad_reason"
    refused = client.post(f"/api/locker/pickups/{pickup['pickup_id']}/refuse", json={"reason": "damaged"})
    assert refused.status_code == 200 and refused.json["state"] == "refusing", refused.json
    sim.close_door(spec.board, spec.lock)  # the parcel never left
    wait_until(lambda: pickup_state(client, pickup["pickup_id"]) == "refused", what="refused")

    [event] = outbox(controller.db, "parcel.refused")
    assert event.data["parcel_id"] == deposited["parcel_id"] and event.data["reason"] == "damaged"
    assert event.data["courier_id"] == COURIER_ID
    envelope = {"message_id": event.message_id, "seq": event.seq, "type": event.type, "ts": iso_utc(event.ts),
                "site_id": "s", "device_id": "d", "data": event.data}
    assert contract.errors("evt.parcel.refused", envelope) == []
    assert not outbox(controller.db, "parcel.collected")
    entry = client.get("/api/locker/compartments").json["compartments"][spec.number - 1]
    assert entry["state"] == "refused"
    diag_entry = client.get("/api/diag/doors").json["compartments"][spec.number - 1]
    assert (diag_entry["state"], diag_entry["parcel_state"]) == ("refused", "refused")
    # the code no longer opens anything (and says it was used); the compartment is not reassigned
    again = client.post("/api/locker/pickup", json={"code": deposited["pickup_code"]})
    assert again.status_code == 403 and again.json["error"]["code"] == "code_used"

    # another courier neither sees nor takes it; its own courier does
    controller.settings.locker.couriers["135790"] = "courier-9"  # the live settings object
    other_login = client.post("/api/locker/courier/login", json={"code": "135790"}).json
    other = {"Authorization": f"Bearer {other_login['token']}"}
    assert client.get("/api/locker/returns", headers=other).json["parcels"] == []
    stolen = client.post("/api/locker/returns", headers=other, json={"parcel_id": deposited["parcel_id"]})
    assert stolen.status_code == 404
    [listed] = client.get("/api/locker/returns", headers=courier).json["parcels"]
    assert (listed["parcel_id"], listed["why"], listed["reason"]) == (deposited["parcel_id"], "refused", "damaged")
    taken = client.post("/api/locker/returns", headers=courier, json={"parcel_id": deposited["parcel_id"]})
    assert taken.status_code == 200, taken.json
    sim.set_item(spec.board, spec.lock, False)
    sim.close_door(spec.board, spec.lock)
    [returned] = wait_until(lambda: outbox(controller.db, "parcel.returned"), what="returned")
    assert returned.data["courier_id"] == COURIER_ID
    results = [(a.action, a.result) for a in audits(controller.db) if a.target == deposited["parcel_id"]]
    assert ("refusal", "requested") in results and ("refusal", "refused") in results
    assert ("return", "returned") in results


def test_refused_after_taking_it_out_reopens_the_door(controller, client, courier, sim):
    spec, deposited = deposit_parcel(controller, client, courier, sim)
    pickup = open_for_pickup(client, deposited["pickup_code"])
    sim.set_item(spec.board, spec.lock, False)
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: pickup_state(client, pickup["pickup_id"]) == "collected", what="collected")

    reply = client.post(f"/api/locker/pickups/{pickup['pickup_id']}/refuse", json={"reason": "wrong"})
    assert reply.status_code == 200, reply.json
    assert sim.is_open(spec.board, spec.lock)  # opened again for the parcel to go back in
    sim.set_item(spec.board, spec.lock, True)
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: pickup_state(client, pickup["pickup_id"]) == "refused", what="refused")
    [event] = outbox(controller.db, "parcel.refused")
    assert event.data["reason"] == "wrong"
    reopened = [a for a in audits(controller.db, "door_open") if a.detail["reason"] == "refusal"]
    assert [a.result for a in reopened] == ["opened"]


def test_refusal_when_the_door_jams(controller, client, courier, sim):
    spec, deposited = deposit_parcel(controller, client, courier, sim)
    pickup = open_for_pickup(client, deposited["pickup_code"])
    sim.set_item(spec.board, spec.lock, False)
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: pickup_state(client, pickup["pickup_id"]) == "collected", what="collected")

    sim.jam(spec.board, spec.lock)
    reply = client.post(f"/api/locker/pickups/{pickup['pickup_id']}/refuse", json={"reason": "short"})
    assert reply.status_code == 409 and reply.json["error"]["code"] == "door_not_opened", reply.json
    assert pickup_state(client, pickup["pickup_id"]) == "collected"  # still in the resident's hands
    assert not outbox(controller.db, "parcel.refused")
    [fault] = outbox(controller.db, "door.fault")
    assert fault.data["compartment"] == spec.number
    results = [(a.action, a.result) for a in audits(controller.db) if a.target == deposited["parcel_id"]]
    assert ("refusal", "door_not_opened") in results


def test_refusal_is_only_for_a_pickup_still_at_hand(controller, client, courier, sim, fake_clock):
    spec, deposited = deposit_parcel(controller, client, courier, sim)
    pickup = open_for_pickup(client, deposited["pickup_code"])
    sim.set_item(spec.board, spec.lock, False)
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: pickup_state(client, pickup["pickup_id"]) == "collected", what="collected")
    fake_clock.advance(minutes=10)
    late = client.post(f"/api/locker/pickups/{pickup['pickup_id']}/refuse", json={"reason": "damaged"})
    assert late.status_code == 409 and late.json["error"]["code"] == "wrong_state"
    assert client.post("/api/locker/pickups/pk-nope/refuse", json={"reason": "damaged"}).status_code == 404
    assert not sim.is_open(spec.board, spec.lock)


def test_the_door_screen_has_a_refuse_button_with_reasons_in_chinese(controller, client, courier, sim):
    import re

    from edge.kiosk_ui import create_app

    spec, deposited = deposit_parcel(controller, client, courier, sim)
    kiosk = create_app(controller).test_client()
    csrf = re.search(r'data-csrf="([^"]+)"', kiosk.get("/").get_data(as_text=True)).group(1)
    opened = kiosk.post("/pickup/code", data={"code": deposited["pickup_code"], "csrf_token": csrf})
    door_url = opened.location
    page = kiosk.get(door_url).get_data(as_text=True)
    assert "拒收" in page and "拒收：包裹破损" in page and "拒收：错件" in page and "拒收：短少" in page
    refused = kiosk.post(f"{door_url}/refuse", data={"reason": "damaged", "csrf_token": csrf},
                         follow_redirects=True).get_data(as_text=True)
    assert "请将包裹放回柜内并关好柜门。" in refused
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: outbox(controller.db, "parcel.refused"), what="refused")
    after = kiosk.get(door_url).get_data(as_text=True)
    shown = re.search(r'data-live-when="state=refused"(?![^>]*hidden)[^>]*>(.*?)</div>', after, re.S)
    assert shown and "已拒收，包裹将退回快递公司。" in shown.group(1)
    # a parcel this visit did not open cannot be refused from this screen
    other = create_app(controller).test_client()
    other_csrf = re.search(r'data-csrf="([^"]+)"', other.get("/").get_data(as_text=True)).group(1)
    assert other.post(f"{door_url}/refuse", data={"reason": "wrong", "csrf_token": other_csrf}).location \
        .endswith("/pickup/")


def test_the_courier_screen_says_refused_and_maintenance_in_words(controller, client, courier, sim):
    import re

    from edge.kiosk_ui import create_app
    from edge.storage import Actor

    spec, deposited = deposit_parcel(controller, client, courier, sim)
    pickup = open_for_pickup(client, deposited["pickup_code"])
    client.post(f"/api/locker/pickups/{pickup['pickup_id']}/refuse", json={"reason": "short"})
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: pickup_state(client, pickup["pickup_id"]) == "refused", what="refused")
    controller.services.locker.set_maintenance(20, True, "锁舌损坏", Actor.TECHNICIAN, "tech-li")

    kiosk = create_app(controller).test_client()
    csrf = re.search(r'data-csrf="([^"]+)"', kiosk.get("/").get_data(as_text=True)).group(1)
    kiosk.post("/courier/", data={"courier_code": "246810", "csrf_token": csrf})
    page = kiosk.get("/courier/outgoing").get_data(as_text=True)
    assert "收件人拒收，请取回" in page and "短少" in page
    assert "停用的柜门（维护中）" in page and "维护中 (锁舌损坏)" in page
    taken = kiosk.post(f"/courier/refused/{deposited['parcel_id']}", data={"csrf_token": csrf},
                       follow_redirects=True).get_data(as_text=True)
    assert f"{spec.number} 号柜门已打开" in taken and sim.is_open(spec.board, spec.lock)
