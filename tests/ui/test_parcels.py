"""Courier deposit and resident pickup, end to end: browser -> Flask -> locker service ->
Kerong driver -> lock-board simulator on a PTY, and the door state pushed back to the page."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.support.browser import assert_accessible, shoot, type_on_keypad
from tests.support.station import COURIER_CODE, Station
from tests.support.platform import revealed

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
RECIPIENT = "13912345678"


def deposit_as_courier(page, kiosk: Station, *, english: bool) -> int:
    """Courier flow up to the open door; returns the door number shown."""
    t = (lambda en, zh: en) if english else (lambda en, zh: zh)
    page.goto("/")
    if english:
        page.get_by_role("button", name="English").click()
    page.get_by_role("link", name=t("Courier", "快递员"), exact=True).click()
    type_on_keypad(page, COURIER_CODE)
    assert_accessible(page)
    page.get_by_role("button", name=t("Next", "下一步")).click()

    page.get_by_label(t("Waybill number (type it, or scan the label)", "运单号（手动输入或扫描面单）")).fill("SF1234567890")
    page.get_by_role("button", name=t("Next", "下一步")).click()

    type_on_keypad(page, "1391234567")
    page.get_by_role("button", name=t("Next", "下一步")).click()
    expect(page.get_by_role("alert")).to_be_visible()  # 10 digits: refused in plain words
    type_on_keypad(page, RECIPIENT)
    page.get_by_role("button", name=t("Next", "下一步")).click()

    assert page.get_by_text("139****5678").is_visible()  # masked once entered
    assert RECIPIENT not in page.content()
    assert_accessible(page)
    shoot(page, f"courier-size-{'en' if english else 'zh'}")
    page.get_by_role("button", name=re.compile(t("Medium", "中号"))).click()

    door = page.locator("[data-live-when='state=door_open'] .door-number")
    expect(door).to_be_visible()
    number = int(door.inner_text())
    assert kiosk.sim.is_open(*kiosk.door(number))
    assert_accessible(page)
    shoot(page, f"courier-door-{'en' if english else 'zh'}")
    return number


def test_courier_deposits_then_resident_collects(page, kiosk: Station) -> None:
    number = deposit_as_courier(page, kiosk, english=True)
    expect(page.get_by_text("is open")).to_be_visible()

    # The courier puts the parcel in and pushes the door shut: the page follows, no reload.
    board, lock = kiosk.door(number)
    kiosk.sim.set_item(board, lock, True)
    kiosk.sim.close_door(board, lock)
    expect(page.locator("[data-live-when='state=deposited']")).to_be_visible()
    page.get_by_role("button", name="I closed the door").click()
    expect(page.get_by_role("status").filter(has_text=f"door {number}")).to_be_visible()
    assert page.get_by_role("heading", name=re.compile("Step 1 of 3")).is_visible()

    [deposited] = kiosk.outbox("parcel.deposited")
    code = revealed(deposited)["pickup_code"]

    # A resident, in Chinese, types the code on the keypad.
    resident = page.context.browser.new_context(viewport={"width": 1280, "height": 800},
                                                base_url=kiosk.url)
    try:
        them = resident.new_page()
        them.goto("/")
        them.get_by_role("link", name="取件", exact=True).click()
        type_on_keypad(them, code[:-1] + "5")
        them.locator(".keypad").get_by_role("button", name="删除最后一位").click()
        assert them.get_by_role("textbox", name="取件码").input_value() == code[:-1]
        type_on_keypad(them, code[-1])
        assert_accessible(them)
        shoot(them, "pickup-code-zh")
        them.get_by_role("button", name="开柜取件").click()

        expect(them.get_by_role("status").filter(has_text="已打开")).to_be_visible()
        assert them.locator("[data-live-when='state=door_open'] .door-number").inner_text() == str(number)
        expect(them.get_by_text("请取出包裹并关好柜门。")).to_be_visible()
        assert kiosk.sim.is_open(board, lock)
        assert_accessible(them)
        shoot(them, "pickup-door-zh")

        kiosk.sim.set_item(board, lock, False)
        kiosk.sim.close_door(board, lock)
        expect(them.get_by_text("谢谢，包裹已取走。")).to_be_visible()
        expect(them.locator("[data-live-when='state=door_open']")).to_be_hidden()
        assert len(kiosk.outbox("parcel.collected")) == 1
    finally:
        resident.close()


def test_wrong_code_says_attempts_left_then_minutes(page, kiosk: Station) -> None:
    limit = kiosk.controller.settings.locker.wrong_code_limit
    page.goto("/pickup/")
    for attempt in range(1, limit):
        type_on_keypad(page, "00000000")
        page.get_by_role("button", name="开柜取件").click()
        expect(page.get_by_role("alert")).to_contain_text(f"还可以再试 {limit - attempt} 次")
    type_on_keypad(page, "00000000")
    page.get_by_role("button", name="开柜取件").click()
    expect(page.get_by_role("alert")).to_contain_text("分钟后再试")
    shoot(page, "pickup-cooldown-zh")
    page.get_by_role("button", name="English").click()
    type_on_keypad(page, "12345678")
    page.get_by_role("button", name="Open my door").click()
    expect(page.get_by_role("alert")).to_contain_text(re.compile(r"try again in \d+ minutes?"))


def test_courier_door_did_not_open_then_cancel(page, kiosk: Station) -> None:
    first = deposit_as_courier(page, kiosk, english=False)
    page.get_by_role("button", name="柜门没有打开").click()
    door = page.locator("[data-live-when='state=door_open'] .door-number")
    expect(door).not_to_have_text(str(first))
    second = int(door.inner_text())
    assert kiosk.sim.is_open(*kiosk.door(second))

    page.get_by_role("button", name="取消本次投递").click()
    expect(page.get_by_role("status")).to_contain_text("已取消")
    assert page.get_by_role("heading", name=re.compile("第 1 步")).is_visible()
    assert not kiosk.outbox("parcel.deposited")


def test_unknown_courier_code_is_refused(page, kiosk: Station) -> None:
    page.goto("/courier/")
    type_on_keypad(page, "999999")
    page.get_by_role("button", name="下一步").click()
    expect(page.get_by_role("alert")).to_contain_text("本站没有这个快递员编号")
    assert page.get_by_role("textbox", name="快递员编号").is_visible()


def test_door_closed_with_nothing_inside_can_be_opened_again(page, kiosk: Station) -> None:
    number = deposit_as_courier(page, kiosk, english=True)
    board, lock = kiosk.door(number)
    kiosk.sim.close_door(board, lock)  # pushed shut before the parcel went in
    expect(page.get_by_role("alert")).to_contain_text("nothing is inside")
    page.get_by_role("button", name="Open the door again").click()
    expect(page.locator("[data-live-when='state=door_open']")).to_be_visible()
    assert kiosk.sim.is_open(board, lock)
    kiosk.sim.set_item(board, lock, True)
    kiosk.sim.close_door(board, lock)
    expect(page.locator("[data-live-when='state=deposited']")).to_be_visible()
    page.get_by_role("button", name="I closed the door").click()
    expect(page.get_by_role("status").filter(has_text=f"door {number}")).to_be_visible()
    assert len(kiosk.outbox("parcel.deposited")) == 1
    assert_accessible(page)
    shoot(page, "courier-stored-en")


def test_pickup_with_the_scanned_qr_code(page, kiosk: Station) -> None:
    locker = kiosk.services.locker
    view = locker.start_deposit("courier-sf", "YT0001", RECIPIENT, "L")
    board, lock = kiosk.door(view.compartment)
    kiosk.sim.set_item(board, lock, True)
    kiosk.sim.close_door(board, lock)
    page.goto("/pickup/")
    page.get_by_role("button", name="English").click()
    [deposited] = wait_for_outbox(kiosk, "parcel.deposited")

    assert page.request.post("/live/scanner", data={"code": revealed(deposited)["pickup_token"]}).ok
    expect(page.get_by_text("Please take your parcel and close the door.")).to_be_visible()
    assert page.locator("[data-live-when='state=door_open'] .door-number").inner_text() == str(view.compartment)
    assert kiosk.sim.is_open(board, lock)


def wait_for_outbox(kiosk: Station, type_: str) -> list:
    deadline = time.monotonic() + 10
    while not (rows := kiosk.outbox(type_)):
        assert time.monotonic() < deadline, f"no {type_} in the outbox"
        time.sleep(0.05)
    return rows
