"""One code, every parcel, for a scanned pickup QR (locker.one_code_all_parcels): the QR token of
one parcel opens all of that resident's parcels here, one door after another, as a typed code
does; with the setting off, the token opens its own door only. Through the HTTP API against the
KR-CU16 simulator on a PTY."""
from __future__ import annotations

import pytest

from tests.locker.test_one_code import store_parcel, take_and_close
from tests.support.station import audits, outbox

pytestmark = pytest.mark.timeout(120)
OTHER_PHONE = "13912345678"


@pytest.fixture
def locker_overrides():
    return {"one_code_all_parcels": True}


def scan(client, token):
    return client.post("/api/locker/pickup/token", json={"token": token})


def test_one_qr_opens_every_parcel_of_that_resident_one_door_after_another(controller, client, courier, sim):
    first_spec, first = store_parcel(controller, client, courier, sim)
    second_spec, second = store_parcel(controller, client, courier, sim)
    third_spec, _ = store_parcel(controller, client, courier, sim)
    other_spec, _ = store_parcel(controller, client, courier, sim, phone=OTHER_PHONE)

    reply = scan(client, first["pickup_token"])
    assert reply.status_code == 200, reply.json
    opened = reply.json
    assert opened["compartment"] == first_spec.number
    assert opened["next_doors"] == [second_spec.number, third_spec.number]
    assert not sim.is_open(second_spec.board, second_spec.lock)  # one door at a time
    early = client.post(f"/api/locker/pickups/{opened['pickup_id']}/next")
    assert early.status_code == 409 and f"close door {first_spec.number}" in early.json["error"]["message"]

    take_and_close(controller, client, sim, opened)
    following = client.post(f"/api/locker/pickups/{opened['pickup_id']}/next").json
    assert following["compartment"] == second_spec.number and following["next_doors"] == [third_spec.number]
    assert sim.is_open(second_spec.board, second_spec.lock)
    take_and_close(controller, client, sim, following)
    last = client.post(f"/api/locker/pickups/{following['pickup_id']}/next").json
    assert last["compartment"] == third_spec.number and last["next_doors"] == []
    take_and_close(controller, client, sim, last)
    assert client.post(f"/api/locker/pickups/{last['pickup_id']}/next").status_code == 404

    collected = outbox(controller.db, "parcel.collected")
    assert [(e.data["compartment"], e.data["method"]) for e in collected] == [
        (first_spec.number, "token"), (second_spec.number, "token_next"), (third_spec.number, "token_next")]
    openings = [a for a in audits(controller.db, "door_open") if a.detail["reason"] == "pickup"]
    assert [a.target for a in openings] == [f"compartment:{n}" for n in
                                            (first_spec.number, second_spec.number, third_spec.number)]
    # the second parcel's own QR now finds it collected; the other resident's parcel stays in
    again = scan(client, second["pickup_token"])
    assert again.status_code == 403 and again.json["error"]["reason"] == "used"
    assert client.get("/api/locker/compartments").json["compartments"][other_spec.number - 1]["state"] == "occupied"
    assert not sim.is_open(other_spec.board, other_spec.lock)


def test_the_next_door_waits_only_a_few_minutes_then_asks_for_a_new_scan(controller, client, courier, sim,
                                                                       fake_clock):
    _, first = store_parcel(controller, client, courier, sim)
    second_spec, _ = store_parcel(controller, client, courier, sim)
    opened = scan(client, first["pickup_token"]).json
    take_and_close(controller, client, sim, opened)
    fake_clock.advance(minutes=4)
    late = client.post(f"/api/locker/pickups/{opened['pickup_id']}/next")
    assert late.status_code == 409 and "scan your pickup QR code again" in late.json["error"]["message"]
    assert not sim.is_open(second_spec.board, second_spec.lock)


@pytest.mark.parametrize("locker_overrides", [{}])
def test_off_by_default_a_qr_opens_its_own_door_only(controller, client, courier, sim, locker_overrides):
    first_spec, first = store_parcel(controller, client, courier, sim)
    second_spec, second = store_parcel(controller, client, courier, sim)
    opened = scan(client, first["pickup_token"]).json
    assert opened["compartment"] == first_spec.number and opened["next_doors"] == []
    take_and_close(controller, client, sim, opened)
    refused = client.post(f"/api/locker/pickups/{opened['pickup_id']}/next")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "wrong_state"
    assert not sim.is_open(second_spec.board, second_spec.lock)
    assert client.get("/api/locker/compartments").json["compartments"][second_spec.number - 1]["state"] == "occupied"
    # the second parcel still opens with its own QR
    own = scan(client, second["pickup_token"]).json
    assert own["compartment"] == second_spec.number and own["next_doors"] == []
