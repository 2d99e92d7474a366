"""Home, language switch, large text: the frame every screen shares."""
from __future__ import annotations

import pytest

from tests.support.browser import assert_accessible, shoot

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

ZH_TILES = ["取件", "场地预约", "活动", "求助", "通知与政策", "服务目录", "评价", "快递员"]
EN_TILES = ["Collect a parcel", "Book a room", "Activities", "Ask for help", "Notices & policies",
            "Services", "Rate a service", "Courier"]


def test_home_in_chinese_then_english(page) -> None:
    page.goto("/")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    for name in ZH_TILES:
        assert page.get_by_role("link", name=name, exact=True).is_visible()
    assert page.get_by_role("link", name="紧急求助").is_visible()
    assert "08:30" in page.locator(".hours").inner_text()
    assert page.get_by_role("link", name="社区卫生服务中心冬季流感疫苗接种通知").count() >= 0
    assert page.evaluate("document.fonts.check('22px \"Noto Sans CJK SC\"', '取件')")
    assert_accessible(page)
    shoot(page, "home-zh")

    page.get_by_role("button", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    for name in EN_TILES:
        assert page.get_by_role("link", name=name, exact=True).is_visible()
    assert page.get_by_role("link", name="Emergency").is_visible()
    assert_accessible(page)
    shoot(page, "home-en")

    page.get_by_role("button", name="中文").click()
    assert page.get_by_role("link", name="取件", exact=True).is_visible()


def test_language_and_large_text_stay_across_screens(page) -> None:
    page.goto("/")
    page.get_by_role("button", name="English").click()
    page.get_by_role("link", name="Services", exact=True).click()
    assert page.get_by_role("heading", name="Services", level=1).is_visible()

    body_size = "parseFloat(getComputedStyle(document.querySelector('main p, main li')).fontSize)"
    normal = page.evaluate(body_size)
    assert normal >= 18
    toggle_look = "getComputedStyle(document.querySelector('[aria-pressed]')).backgroundColor"
    off_look = page.evaluate(toggle_look)
    page.get_by_role("button", name="Large text").click()
    assert page.get_by_role("button", name="Large text").get_attribute("aria-pressed") == "true"
    assert page.evaluate(toggle_look) != off_look  # the "on" state is visible, not only announced
    assert page.get_by_role("heading", name="Services", level=1).is_visible()  # same screen
    assert page.evaluate(body_size) >= 1.5 * normal
    shoot(page, "services-en-large")

    page.get_by_role("link", name="Home").click()
    assert page.get_by_role("button", name="Large text").get_attribute("aria-pressed") == "true"
    assert page.locator("html").get_attribute("lang") == "en"


def test_touch_targets_are_big_enough(page) -> None:
    page.goto("/")
    sizes = page.evaluate("""[...document.querySelectorAll('a, button')]
        .filter(e => e.offsetParent !== null)
        .map(e => { const r = e.getBoundingClientRect(); return [e.textContent.trim(), r.width, r.height]; })""")
    small = [s for s in sizes if s[1] < 60 or s[2] < 60]
    assert sizes and not small, small
