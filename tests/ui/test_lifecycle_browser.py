"""The parcel lifecycle's new screens in Chromium, in Chinese: refusing a parcel at its open
door (拒收, large targets) and sending a parcel (寄件); the pages follow the doors live."""
from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tests.support.platform import revealed
from tests.support.browser import assert_accessible, shoot, type_on_keypad
from tests.support.station import COURIER_ID, Station

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture
def kiosk_settings():
    return {"locker": {"send_companies": {"sf": "顺丰速运", "yt": "圆通速递"}}}


def stored_parcel(kiosk: Station) -> dict:
    locker = kiosk.services.locker
    view = locker.start_deposit(COURIER_ID, "SF20261130", "13912345678", "M")
    board, lock = kiosk.door(view.compartment)
    kiosk.sim.set_item(board, lock, True)
    kiosk.sim.close_door(board, lock)
    deadline = time.monotonic() + 10
    while not kiosk.outbox("parcel.deposited"):
        assert time.monotonic() < deadline, "the deposit was never confirmed"
        time.sleep(0.02)
    return revealed(kiosk.outbox("parcel.deposited")[0])


def test_refusing_a_parcel_at_its_open_door(page, kiosk: Station) -> None:
    parcel = stored_parcel(kiosk)
    page.goto("/pickup/")
    type_on_keypad(page, parcel["pickup_code"])
    page.get_by_role("button", name="开柜取件").click()
    expect(page.get_by_role("button", name="拒收：包裹破损")).to_be_visible()
    assert page.get_by_role("button", name="拒收：错件").is_visible()
    assert page.get_by_role("button", name="拒收：短少").is_visible()
    box = page.get_by_role("button", name="拒收：包裹破损").bounding_box()
    assert box["height"] >= 80  # a large target
    assert_accessible(page)
    shoot(page, "pickup-refuse-zh")
    page.get_by_role("button", name="拒收：包裹破损").click()
    expect(page.get_by_text("请将包裹放回柜内并关好柜门。")).to_be_visible()
    board, lock = kiosk.door(parcel["compartment"])
    kiosk.sim.close_door(board, lock)  # the parcel stayed in
    expect(page.get_by_text("已拒收，包裹将退回快递公司。")).to_be_visible()  # live, no reload
    assert [e.data["reason"] for e in kiosk.outbox("parcel.refused")] == ["damaged"]
    shoot(page, "pickup-refused-zh")


def test_sending_a_parcel_with_a_send_code(page, kiosk: Station) -> None:
    page.goto("/pickup/")
    page.get_by_role("link", name="寄件").click()
    page.get_by_role("radio", name="圆通速递").check()
    page.get_by_role("radio", name="中号 (M)").check()
    for key in "YT7Q9":
        page.locator(".keypad").get_by_role("button", name=key, exact=True).click()
    assert page.get_by_label("快递公司 App 中的寄件码").input_value() == "YT7Q9"
    assert_accessible(page)
    shoot(page, "send-zh")
    page.get_by_role("button", name="打开柜门").click()
    door = page.locator("[data-live-when='state=door_open'] .door-number")
    expect(door).to_be_visible()
    board, lock = kiosk.door(int(door.inner_text()))
    assert kiosk.sim.is_open(board, lock)
    kiosk.sim.set_item(board, lock, True)
    kiosk.sim.close_door(board, lock)
    expect(page.get_by_text("谢谢，包裹将等待快递员取件。")).to_be_visible()
    [sent] = kiosk.outbox("parcel.send_deposited")
    assert sent.data["company"] == "yt"
    shoot(page, "send-door-zh")
