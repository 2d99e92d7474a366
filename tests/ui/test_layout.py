"""Layout for elderly readers, measured in Chromium at both kiosk sizes, in Chinese: the top
bar keeps to two rows with someone identified, time ranges never split, Chinese text has
full-width colons, and at 1280x800 the help keypad and its Send button are above the fold."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from simulators.demo import demo_token_issuer
from tests.support.browser import LANDSCAPE, PORTRAIT, shoot
from tests.support.station import Station

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
