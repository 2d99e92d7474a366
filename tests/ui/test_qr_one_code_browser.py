"""One code, every parcel on the QR path, by taps in Chromium: the pickup QR of one parcel, held
to the simulated QR camera (the real scanner and decoder read it), opens that door; the screen
says which door is next, and after the door closes one tap opens it. Browser -> Flask -> scanner
-> locker -> KR-CU16 simulator on a PTY (locker.one_code_all_parcels on)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.browser import assert_accessible, shoot
from tests.support.station import COURIER_ID, Station, wait_until
from tests.support.platform import revealed

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
RESIDENT_PHONE, OTHER_PHONE = "13800138000", "13912345678"


@pytest.fixture
def kiosk_settings():
    return {"locker": {"one_code_all_parcels": True}}


def deposit(kiosk: Station, phone: str, waybill: str) -> dict:
    view = kiosk.services.locker.start_deposit(COURIER_ID, waybill, phone, "M")
    board, lock = kiosk.door(view.compartment)
    kiosk.sim.set_item(board, lock, True)
    kiosk.sim.close_door(board, lock)
    return wait_until(lambda: [revealed(e) for e in kiosk.outbox("parcel.deposited")
                               if e.data["deposit_id"] == view.deposit_id], what="deposited")[0]


def test_one_scanned_qr_opens_the_next_door_after_a_tap(page, kiosk: Station) -> None:
    first = deposit(kiosk, RESIDENT_PHONE, "SF700001")
    second = deposit(kiosk, RESIDENT_PHONE, "SF700002")
    other = deposit(kiosk, OTHER_PHONE, "SF700003")
    before = kiosk.controller.simulation.qr_camera.frames_read

    page.goto("/pickup/")
    page.get_by_label("模拟模式：粘贴二维码内容").fill(first["pickup_token"])
    page.get_by_role("button", name="使用此码").click()
    door = page.locator("[data-live-when='state=door_open'] .door-number")
    expect(door).to_have_text(str(first["compartment"]), timeout=20_000)
    assert kiosk.controller.simulation.qr_camera.frames_read > before  # read by the scanner, not posted
    expect(page.get_by_text(f"下一个是 {second['compartment']} 号柜门")).to_be_visible()
    assert not kiosk.sim.is_open(*kiosk.door(second["compartment"]))  # one door at a time
    assert_accessible(page)
    shoot(page, "pickup-qr-next-door-zh")

    # the resident takes the parcel and shuts the door: the page offers the next door, live
    board, lock = kiosk.door(first["compartment"])
    kiosk.sim.set_item(board, lock, False)
    kiosk.sim.close_door(board, lock)
    next_button = page.get_by_role("button", name=f"打开 {second['compartment']} 号柜门，取下一件包裹")
    expect(next_button).to_be_visible()
    shoot(page, "pickup-qr-next-button-zh")
    next_button.click()

    expect(door).to_have_text(str(second["compartment"]))
    assert kiosk.sim.is_open(*kiosk.door(second["compartment"]))
    expect(page.locator(".next-door")).to_have_count(0)  # that was the last of this resident's parcels
    assert not kiosk.sim.is_open(*kiosk.door(other["compartment"]))
    assert [e.data["method"] for e in kiosk.outbox("parcel.collected")] == ["token"]
