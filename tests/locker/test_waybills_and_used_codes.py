"""Waybills: one live parcel per waybill in this locker (refused in plain words, audited), letters
and digits accepted. Used pickup codes: told "already used", but charged to the kiosk's attempt
budget exactly like a wrong code, so the answer is no cheaper to guess with."""
from __future__ import annotations

import pytest

from tests.support.station import COURIER_CODE, PHONE, audits, deposit_parcel, outbox, pickup_state, start_deposit, wait_until

pytestmark = pytest.mark.timeout(90)


def deposit(client, courier, waybill, size="M"):
    return client.post("/api/locker/deposits", headers=courier,
                       json={"waybill": waybill, "phone": PHONE, "size": size})


def collect(controller, client, sim, spec, code):
    pickup = client.post("/api/locker/pickup", json={"code": code})
    assert pickup.status_code == 200, pickup.json
    sim.set_item(spec.board, spec.lock, False)
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: pickup_state(client, pickup.json["pickup_id"]) == "collected", what="collected")


def test_a_waybill_already_in_the_locker_is_refused_until_it_leaves(controller, client, courier, sim):
    first = start_deposit(client, courier, waybill="jd0012ab-34")  # letters, digits, lower case
    frames_before = len(sim.frames_received)
    # a deposit under way (door open) already holds the waybill; case does not matter
    again = deposit(client, courier, "JD0012AB-34")
    assert again.status_code == 409, again.json
    assert again.json["error"]["code"] == "waybill_in_locker"
    assert f"compartment {first['compartment']}" in again.json["error"]["message"]
    assert not any(f.data[2] == 0x31 for f in sim.frames_received[frames_before:])  # no unlock sent

    spec = controller.services.locker.compartment_location(first["compartment"])
    sim.set_item(spec.board, spec.lock, True)
    sim.close_door(spec.board, spec.lock)
    [stored] = wait_until(lambda: outbox(controller.db, "parcel.deposited"), what="deposited")
    assert stored.data["waybill"] == "JD0012AB-34"
    assert deposit(client, courier, "jd0012ab-34").json["error"]["code"] == "waybill_in_locker"
    refusals = [a for a in audits(controller.db, "deposit") if a.result == "refused_waybill_in_locker"]
    assert len(refusals) == 2 and refusals[0].detail["waybill"] == "JD0012AB-34"

    # once collected, the same label may come again (a parcel sent back and forth)
    from tests.support.platform import revealed

    collect(controller, client, sim, spec, revealed(stored)["pickup_code"])
    assert deposit(client, courier, "JD0012AB-34").status_code == 201


@pytest.mark.parametrize("waybill", ["SF 123", "运单123", "SF123!", "-SF1", "ＳＦ123", "SF-", "A" * 65])
def test_waybills_are_letters_and_digits(controller, client, courier, sim, waybill):
    reply = deposit(client, courier, waybill)
    assert reply.status_code == 400 and reply.json["error"]["code"] == "bad_waybill", reply.json
    assert not any(f.data[2] == 0x31 for f in sim.frames_received)


def test_a_used_code_says_so_and_costs_the_same_as_a_wrong_one(controller, client, courier, sim):
    spec, deposited = deposit_parcel(controller, client, courier, sim)
    collect(controller, client, sim, spec, deposited["pickup_code"])
    limit = controller.settings.locker.wrong_code_limit

    used = client.post("/api/locker/pickup", json={"code": deposited["pickup_code"]})
    assert used.status_code == 403 and used.json["error"]["code"] == "code_used"
    assert used.json["error"]["attempts_left"] == limit - 1
    wrong = client.post("/api/locker/pickup", json={"code": "00000001"})
    assert wrong.json["error"]["code"] == "wrong_code" and wrong.json["error"]["attempts_left"] == limit - 2
    for _ in range(limit - 3):
        client.post("/api/locker/pickup", json={"code": deposited["pickup_code"]})
    last = client.post("/api/locker/pickup", json={"code": deposited["pickup_code"]})
    assert last.status_code == 429 and last.json["error"]["code"] == "cooling_down"
    # in the cooldown a used code tells nothing more than any other code
    assert client.post("/api/locker/pickup", json={"code": deposited["pickup_code"]}).json["error"]["code"] \
        == "cooling_down"
    results = [a.result for a in audits(controller.db, "pickup_code")]
    assert results.count("used") == limit - 2 and results.count("wrong") == 1
    assert "wrong_cooldown_started" in results
    assert deposited["pickup_code"] not in str([(a.detail, a.target) for a in audits(controller.db)])


def screen_client(controller):
    """The kiosk's screens (Chinese by default) as a browser would post them, CSRF included."""
    import re

    from edge.kiosk_ui import create_app

    client = create_app(controller).test_client()
    page = client.get("/").get_data(as_text=True)
    return client, re.search(r'data-csrf="([^"]+)"', page).group(1)


def test_the_kiosk_says_it_in_chinese(controller, client, courier, sim):
    spec, deposited = deposit_parcel(controller, client, courier, sim)
    with controller.db.read() as s:
        from edge.locker.models import Parcel

        waybill = s.get(Parcel, deposited["parcel_id"]).waybill
    kiosk, csrf = screen_client(controller)
    kiosk.post("/courier/", data={"courier_code": COURIER_CODE, "csrf_token": csrf})
    refused = kiosk.post("/courier/waybill", data={"waybill": waybill.lower(), "csrf_token": csrf},
                         follow_redirects=True)
    assert "该运单号的包裹已在本柜中，请核对面单。" in refused.get_data(as_text=True)
    letters = kiosk.get("/courier/waybill").get_data(as_text=True)
    # the on-screen keyboard opens in its letters-and-digits mode on this field (tests/ui/test_keyboard.py)
    assert 'id="waybill"' in letters and 'data-keyboard="latin"' in letters
    accepted = kiosk.post("/courier/waybill", data={"waybill": "yt42ab", "csrf_token": csrf})
    assert accepted.location.endswith("/courier/recipient")

    collect(controller, client, sim, spec, deposited["pickup_code"])
    used = kiosk.post("/pickup/code", data={"code": deposited["pickup_code"], "csrf_token": csrf},
                      follow_redirects=True).get_data(as_text=True)
    assert "该取件码已使用" in used and "取件码不正确" not in used
