"""One code, every parcel (per site, locker.one_code_all_parcels): a resident's pickup code opens
all of that resident's parcels here, one door after another, the screen saying which is next."""
from __future__ import annotations

import re

import pytest

from tests.support.station import PHONE, audits, deposit_parcel, outbox, pickup_state, start_deposit, wait_until
from tests.support.platform import revealed

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def locker_overrides():
    return {"one_code_all_parcels": True}


def store_parcel(controller, client, courier, sim, phone=PHONE):
    deposit = client.post("/api/locker/deposits", headers=courier,
                          json={"waybill": f"YT{len(outbox(controller.db, 'parcel.deposited')) + 100}",
                                "phone": phone, "size": "M"}).json
    spec = controller.services.locker.compartment_location(deposit["compartment"])
    sim.set_item(spec.board, spec.lock, True)
    sim.close_door(spec.board, spec.lock)
    event = wait_until(lambda: [e for e in outbox(controller.db, "parcel.deposited")
                                if e.data["deposit_id"] == deposit["deposit_id"]], what="deposited")[0]
    return spec, revealed(event)


def take_and_close(controller, client, sim, pickup):
    spec = controller.services.locker.compartment_location(pickup["compartment"])
    sim.set_item(spec.board, spec.lock, False)
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: pickup_state(client, pickup["pickup_id"]) == "collected", what="collected")


def test_one_code_opens_every_parcel_of_that_resident_one_door_after_another(controller, client, courier, sim):
    first_spec, first = store_parcel(controller, client, courier, sim)
    second_spec, _ = store_parcel(controller, client, courier, sim)
    third_spec, _ = store_parcel(controller, client, courier, sim)
    _, someone_else = store_parcel(controller, client, courier, sim, phone="13912345678")

    opened = client.post("/api/locker/pickup", json={"code": first["pickup_code"]}).json
    assert opened["compartment"] == first_spec.number
    assert opened["next_doors"] == [second_spec.number, third_spec.number]
    assert someone_else["compartment"] not in opened["next_doors"]
    assert not sim.is_open(second_spec.board, second_spec.lock)  # one door at a time
    early = client.post(f"/api/locker/pickups/{opened['pickup_id']}/next")
    assert early.status_code == 409 and f"close door {first_spec.number}" in early.json["error"]["message"]

    take_and_close(controller, client, sim, opened)
    second = client.post(f"/api/locker/pickups/{opened['pickup_id']}/next").json
    assert second["compartment"] == second_spec.number and second["next_doors"] == [third_spec.number]
    assert sim.is_open(second_spec.board, second_spec.lock)
    take_and_close(controller, client, sim, second)
    third = client.post(f"/api/locker/pickups/{second['pickup_id']}/next").json
    assert third["compartment"] == third_spec.number and third["next_doors"] == []
    take_and_close(controller, client, sim, third)
    done = client.post(f"/api/locker/pickups/{third['pickup_id']}/next")
    assert done.status_code == 404
    assert len(outbox(controller.db, "parcel.collected")) == 3
    openings = [a for a in audits(controller.db, "door_open") if a.detail["reason"] == "pickup"]
    assert len(openings) == 3  # each door its own audited opening
    # the other resident's parcel stays in
    assert client.get("/api/locker/compartments").json["compartments"][
        someone_else["compartment"] - 1]["state"] == "occupied"


def test_the_door_screen_says_which_door_is_next(controller, client, courier, sim):
    from edge.kiosk_ui import create_app

    first_spec, first = store_parcel(controller, client, courier, sim)
    second_spec, _ = store_parcel(controller, client, courier, sim)
    kiosk = create_app(controller).test_client()
    csrf = re.search(r'data-csrf="([^"]+)"', kiosk.get("/").get_data(as_text=True)).group(1)
    door_url = kiosk.post("/pickup/code", data={"code": first["pickup_code"], "csrf_token": csrf}).location
    page = kiosk.get(door_url).get_data(as_text=True)
    assert f"下一个是 {second_spec.number} 号柜门" in page
    sim.set_item(first_spec.board, first_spec.lock, False)
    sim.close_door(first_spec.board, first_spec.lock)
    wait_until(lambda: outbox(controller.db, "parcel.collected"), what="collected")
    assert f"打开 {second_spec.number} 号柜门" in kiosk.get(door_url).get_data(as_text=True)
    next_url = kiosk.post(f"{door_url}/next", data={"csrf_token": csrf}).location
    assert sim.is_open(second_spec.board, second_spec.lock)
    assert f'class="door-number">{second_spec.number}<' in kiosk.get(next_url).get_data(as_text=True)


@pytest.mark.parametrize("locker_overrides", [{}])
def test_off_by_default_a_code_opens_one_door(controller, client, courier, sim, locker_overrides):
    _, first = deposit_parcel(controller, client, courier, sim)
    start_deposit(client, courier)  # the same phone, still at its door: no matter
    opened = client.post("/api/locker/pickup", json={"code": first["pickup_code"]}).json
    assert opened["next_doors"] == []
    refused = client.post(f"/api/locker/pickups/{opened['pickup_id']}/next")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "wrong_state"
