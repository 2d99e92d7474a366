"""Layout for elderly readers, measured in Chromium at both kiosk sizes, in Chinese: the top
bar keeps to two rows with someone identified, time ranges never split, Chinese text has
full-width colons, and at 1280x800 the help keypad and its Send button are above the fold, as
are the courier's door buttons; phone fields fit 11 digits; the portrait home uses the height."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from simulators.demo import demo_token_issuer
from tests.support.browser import LANDSCAPE, PORTRAIT, shoot, type_on_keypad
from tests.support.station import COURIER_CODE, Station

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
ROWS_OF_THE_BAR = """(() => {
  const tops = [...document.querySelectorAll('.bar > *, .bar-actions > *')]
    .filter(e => e.offsetParent !== null && !e.classList.contains('bar-actions'))
    .map(e => e.getBoundingClientRect().top);
  const rows = [];
  for (const top of tops.sort((a, b) => a - b)) {
    if (!rows.length || top - rows[rows.length - 1] > 30) rows.push(top);
  }
  return rows.length;
})()"""
SPLIT_TIME_RANGES = """[...document.querySelectorAll('.nowrap')]
  .filter(e => e.offsetParent !== null && e.getClientRects().length > 1).map(e => e.textContent)"""
ASCII_COLON_IN_CHINESE = re.compile(r"[\u4e00-\u9fff][:]|[:]\s*[\u4e00-\u9fff]")


def identify(page, kiosk: Station) -> None:
    issuer = demo_token_issuer(kiosk.controller.settings.keys_dir)
    token = issuer.issue("res-1001", "张*华", kiosk.controller.clock.now() + timedelta(minutes=5))
    page.goto("/identify/?next=/mine/")
    assert page.request.post("/live/scanner", data={"code": token}).ok
    expect(page.get_by_role("heading", name="我的服务", exact=True)).to_be_visible()


def test_bar_rows_time_ranges_and_colons_at_both_sizes(page, kiosk: Station) -> None:
    identify(page, kiosk)
    screens = ["/", "/mine/", "/activities/", "/venues/venue-activity-room", "/notices/?kind=about",
               "/notices/notice-water-cut", "/help/"]
    for size in (LANDSCAPE, PORTRAIT):
        page.set_viewport_size(size)
        for path in screens:
            page.goto(path)
            assert page.evaluate(ROWS_OF_THE_BAR) <= 2, (path, size)
            assert page.evaluate(SPLIT_TIME_RANGES) == [], (path, size)
            text = page.locator("body").inner_text()
            assert not ASCII_COLON_IN_CHINESE.search(text), (path, ASCII_COLON_IN_CHINESE.search(text))
    page.set_viewport_size(LANDSCAPE)
    page.goto("/")
    page.get_by_role("button", name="大字模式").click()  # 1.5x type: still two rows, no split times
    for path in ("/", "/activities/", "/mine/"):
        page.goto(path)
        assert page.evaluate(ROWS_OF_THE_BAR) <= 2, path
        assert page.evaluate(SPLIT_TIME_RANGES) == [], path
    shoot(page, "activities-large-zh")


def test_help_keypad_and_send_are_above_the_fold_at_1280x800(page) -> None:
    page.goto("/help/")
    shoot(page, "help-form-layout-zh")
    for name in ("0", "清空", "提交求助"):
        box = page.get_by_role("button", name=name, exact=True).bounding_box()
        assert box["y"] + box["height"] <= LANDSCAPE["height"], name
        assert box["height"] >= 60 and box["width"] >= 60, name
    shoot(page, "help-form-layout-zh")


DOOR_BUTTONS = """[...document.querySelectorAll('.door-actions button')].filter(b => b.offsetParent !== null)
  .map(b => { const r = b.getBoundingClientRect();
              return {name: b.textContent.trim(), top: r.top, bottom: r.bottom, left: r.left, right: r.right}; })"""


def courier_at_the_door(page) -> None:
    """Courier log-in, waybill, recipient, size: the deposit's open door on screen."""
    page.goto("/courier/")
    type_on_keypad(page, COURIER_CODE)
    page.get_by_role("button", name="下一步").click()
    page.get_by_label("运单号（手动输入或扫描面单）").fill("SF2026113001")
    page.get_by_role("button", name="下一步").click()
    type_on_keypad(page, "13912345678")
    page.get_by_role("button", name="下一步").click()
    page.get_by_role("button", name=re.compile("中号")).click()
    expect(page.locator("[data-live-when='state=door_open'] .door-number")).to_be_visible()


def test_courier_door_buttons_are_inside_the_1280x800_viewport(page) -> None:
    """After a deposit the courier sees the door number and every button without scrolling,
    in Chinese, in English (longer words) and with large text."""
    courier_at_the_door(page)
    for setting in ("zh", "English", "Large text"):
        if setting != "zh":
            page.get_by_role("button", name=setting).click()
        buttons = page.evaluate(DOOR_BUTTONS)
        assert len(buttons) == 3, (setting, buttons)  # closed / did not open / cancel
        for button in buttons:
            assert button["top"] >= 0 and button["bottom"] <= LANDSCAPE["height"], (setting, button)
            assert button["left"] >= 0 and button["right"] <= LANDSCAPE["width"], (setting, button)
            assert button["bottom"] - button["top"] >= 60, (setting, button)
        number = page.locator("[data-live-when='state=door_open'] .door-number").bounding_box()
        assert number["y"] + number["height"] <= LANDSCAPE["height"], setting
    shoot(page, "courier-door-layout-en-large")


def test_the_waybill_step_keeps_next_in_view_with_the_keyboard_open(page) -> None:
    page.goto("/courier/")
    type_on_keypad(page, COURIER_CODE)
    page.get_by_role("button", name="下一步").click()
    expect(page.locator("#keyboard")).to_be_visible()  # the waybill field has the focus
    box = page.get_by_role("button", name="下一步").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= LANDSCAPE["height"], box
    shoot(page, "courier-waybill-layout-zh")


PHONE_FITS = """() => { const f = document.getElementById('phone');
  return {value: f.value, scroll: f.scrollWidth, client: f.clientWidth}; }"""


@pytest.mark.parametrize("large_text", [False, True])
def test_the_phone_field_is_wide_enough_for_11_digits(page, large_text: bool) -> None:
    """The help form's and the courier's phone fields show all 11 letter-spaced digits, in
    both orientations and with large text: the field's content is no wider than the field."""
    page.goto("/help/")
    if large_text:
        page.get_by_role("button", name="大字模式").click()
    page.goto("/courier/")
    type_on_keypad(page, COURIER_CODE)
    page.get_by_role("button", name="下一步").click()
    page.get_by_label("运单号（手动输入或扫描面单）").fill("SF2026113002")
    page.get_by_role("button", name="下一步").click()
    for path in ("/help/", "/courier/recipient"):
        page.goto(path)
        type_on_keypad(page, "13800138000")
        for size in (LANDSCAPE, PORTRAIT):
            page.set_viewport_size(size)
            fits = page.evaluate(PHONE_FITS)
            assert fits["value"] == "13800138000", (path, size)
            assert fits["scroll"] <= fits["client"], (path, size, large_text, fits)
            field = page.locator("#phone").bounding_box()
            assert field["x"] >= 0 and field["x"] + field["width"] <= size["width"], (path, size)
        page.set_viewport_size(LANDSCAPE)
    shoot(page, "phone-field-" + ("large" if large_text else "normal"))


def test_home_in_portrait_uses_the_height(page) -> None:
    """1080x1920: the tiles and the notices reach the bottom of the screen (no empty quarter),
    without pushing anything below it; tiles are larger than in landscape."""
    page.set_viewport_size(PORTRAIT)
    page.goto("/")
    last = page.locator(".home-notices .row-link").last.bounding_box()
    bottom = last["y"] + last["height"]
    assert PORTRAIT["height"] * 0.9 <= bottom <= PORTRAIT["height"], bottom
    assert page.evaluate("document.documentElement.scrollHeight") <= PORTRAIT["height"]
    tile = page.get_by_role("link", name="取件", exact=True).bounding_box()
    assert tile["height"] >= 340, tile
    shoot(page, "home-portrait-layout-zh")
