"""Courier log-in limits (per kiosk and per code, 429 with Retry-After, audited) and courier
companies (each sees and takes back only its own company's overdue parcels), through the
HTTP API and the kiosk's courier form against the lock-board simulator on a PTY."""
from __future__ import annotations

import re

import pytest

from edge.settings import SettingsError, load_settings
from tests.support.station import COURIER_CODE, audits, deposit_parcel, pickup_state, wait_until

pytestmark = pytest.mark.timeout(90)

OTHER_CODE, OTHER_ID = "135790", "courier-zto-1"
SAME_COMPANY_CODE, SAME_COMPANY_ID = "112233", "courier-sf-2"


@pytest.fixture
def locker_overrides():
    # courier-7 (old code -> id form: its own company), two couriers of "sf" in the new form
    # (one of them courier-7's code holder would not see), one of "zto".
    return {"couriers": {COURIER_CODE: {"id": "courier-7", "company": "sf"},
                         SAME_COMPANY_CODE: {"id": SAME_COMPANY_ID, "company": "sf"},
                         OTHER_CODE: {"id": OTHER_ID, "company": "zto"}},
            "courier_login_limit": 5, "courier_login_cooldown_s": 300}


def log_in(client, code):
    return client.post("/api/locker/courier/login", json={"code": code})


def test_wrong_courier_codes_hit_a_per_kiosk_cooldown_with_retry_after(controller, client, fake_clock):
    for n, guess in enumerate(["000001", "000002", "000003", "000004"]):
        reply = log_in(client, guess)
        assert reply.status_code == 401 and reply.json["error"]["attempts_left"] == 4 - n
    fifth = log_in(client, "000005")
    assert fifth.status_code == 429 and int(fifth.headers["Retry-After"]) == 300
    # now even the right code waits, on the API and on the kiosk form (same kiosk)
    blocked = log_in(client, COURIER_CODE)
    assert blocked.status_code == 429 and 0 < int(blocked.headers["Retry-After"]) <= 300
    assert _kiosk_form_log_in(controller, COURIER_CODE) == "refused"
    results = [a.result for a in audits(controller.db, "courier_login")]
    assert results == ["refused"] * 4 + ["refused_cooldown_started", "cooling_down", "cooling_down"]
    assert not any(COURIER_CODE in str(a.detail) + str(a.target) for a in audits(controller.db))

    fake_clock.advance(seconds=301)
    again = log_in(client, COURIER_CODE)
    assert again.status_code == 200 and again.json["courier_id"] == "courier-7"
    assert again.json["company"] == "sf"
    assert audits(controller.db, "courier_login")[-1].result == "ok"


def test_the_kiosk_form_counts_wrong_codes_too(controller, client, fake_clock):
    for _ in range(4):
        assert _kiosk_form_log_in(controller, "999999") == "refused"
    assert _kiosk_form_log_in(controller, "999998") == "refused"  # the fifth starts the cooldown
    assert log_in(client, COURIER_CODE).status_code == 429  # the API is this kiosk too
    assert [a.result for a in audits(controller.db, "courier_login")][-2:] == [
        "refused_cooldown_started", "cooling_down"]


def test_one_code_tried_again_and_again_cools_down_on_its_own(controller, client, fake_clock):
    """The per-code budget: with the kiosk's budget wider, a repeated code still stops."""
    controller.settings.locker.courier_login_limit = 3
    for _ in range(2):
        assert log_in(client, "424242").status_code == 401
    assert log_in(client, "424242").status_code == 429
    fake_clock.advance(seconds=301)
    # the per-kiosk rows of those three failures are before the cooldown's end: a fresh start
    assert log_in(client, COURIER_CODE).status_code == 200


def test_the_old_code_to_id_form_still_logs_in_as_its_own_company(tmp_path, monkeypatch):
    settings = load_settings(data_dir=tmp_path, locker={"couriers": {"123456": "courier-old"}})
    entry = settings.locker.courier_by_code("123456")
    assert (entry.id, entry.company_name) == ("courier-old", "courier-old")
    assert settings.locker.company_of("courier-old") == "courier-old"
    with pytest.raises(SettingsError, match="couriers"):
        load_settings(data_dir=tmp_path, locker={"couriers": {"1": {"company": "x"}}})
    monkeypatch.setenv("EDGE_LOCKER__COURIERS", '{"9": "a", "8": {"id": "b", "company": "jd"}}')
    from_env = load_settings(data_dir=tmp_path).locker
    assert from_env.company_of("a") == "a" and from_env.company_of("b") == "jd"


def test_couriers_see_and_take_back_only_their_company_s_parcels(controller, client, sim, fake_clock):
    sf = {"Authorization": f"Bearer {log_in(client, COURIER_CODE).json['token']}"}
    zto = {"Authorization": f"Bearer {log_in(client, OTHER_CODE).json['token']}"}
    sf_colleague = {"Authorization": f"Bearer {log_in(client, SAME_COMPANY_CODE).json['token']}"}
    _, sf_parcel = deposit_parcel(controller, client, sf, sim)
    _, zto_parcel = deposit_parcel(controller, client, zto, sim)
    fake_clock.advance(hours=73)
    assert controller.services.locker.check_retention() == 2

    def listed(headers):
        return [p["parcel_id"] for p in client.get("/api/locker/overdue", headers=headers).json["parcels"]]

    assert listed(sf) == [sf_parcel["parcel_id"]]
    assert listed(sf_colleague) == [sf_parcel["parcel_id"]]
    assert listed(zto) == [zto_parcel["parcel_id"]]

    stolen = client.post("/api/locker/returns", headers=zto, json={"parcel_id": sf_parcel["parcel_id"]})
    assert stolen.status_code == 404
    assert audits(controller.db, "parcel_return")[-1].result == "refused_other_company"
    spec = controller.services.locker.compartment_location(sf_parcel["compartment"])
    assert not sim.is_open(spec.board, spec.lock)

    # a colleague from the same company may take it back
    taken = client.post("/api/locker/returns", headers=sf_colleague, json={"parcel_id": sf_parcel["parcel_id"]})
    assert taken.status_code == 200 and sim.is_open(spec.board, spec.lock)
    sim.set_item(spec.board, spec.lock, False)
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: pickup_state(client, taken.json["pickup_id"]) == "returned", what="returned")


def _kiosk_form_log_in(controller, code) -> str:
    """The courier screen's form, as the kiosk posts it: "ok" when it moves on to the waybill."""
    from edge.kiosk_ui import create_app

    screens = create_app(controller).test_client()
    page = screens.get("/courier/").get_data(as_text=True)
    token = re.search(r'data-csrf="([^"]+)"', page).group(1)
    reply = screens.post("/courier/", data={"courier_code": code, "csrf_token": token})
    assert reply.status_code == 302
    return "ok" if reply.headers["Location"].endswith("/courier/waybill") else "refused"
