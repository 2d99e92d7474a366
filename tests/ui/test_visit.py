"""The end of a visit: "Still there?", back to Home with everything forgotten, the screen saver."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.browser import RESIDENT_PHONE, assert_accessible, shoot, type_on_keypad
from tests.support.station import Station

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
IDLE = {"kiosk": {"idle_timeout_s": 30, "idle_warning_s": 20}}


@pytest.mark.parametrize("kiosk_settings", [IDLE])
def test_idle_timeout_warns_then_forgets_everything(page, kiosk: Station) -> None:
    page.clock.install()
    page.goto("/identify/?next=/venues/mine")
    page.get_by_role("button", name="English").click()
    type_on_keypad(page, RESIDENT_PHONE)
    page.get_by_role("button", name="Confirm").click()
    # a typed phone is low assurance: "my bookings" asks for the texted code first (ADR 0115)
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    assert page.get_by_text("Signed in: 张*华").is_visible()

    page.clock.run_for(31_000)
    dialog = page.get_by_role("dialog", name="Still there?")
    expect(dialog).to_be_visible()
    assert_accessible(page)
    shoot(page, "still-there-en")
    dialog.get_by_role("button", name="Continue").click()
    expect(dialog).to_be_hidden()
    assert "/identify/otp" in page.url

    page.clock.run_for(31_000)
    expect(dialog).to_be_visible()
    page.clock.run_for(21_000)
    expect(page.get_by_role("link", name="取件", exact=True)).to_be_visible()  # Home, default language
    assert page.url.rstrip("/") == kiosk.url
    assert "张*华" not in page.content() and "138****8000" not in page.content()

    # The server forgot the visit too: the resident's page asks who is there again.
    page.goto("/venues/mine")
    expect(page.get_by_role("heading", name="请确认身份")).to_be_visible()


def test_screen_saver_swallows_the_waking_tap_and_wakes_on_presence(page, kiosk: Station) -> None:
    kiosk.app.config["KIOSK_SCREENSAVER_AFTER_S"] = 60
    page.clock.install()
    page.goto("/")
    saver = page.locator("#screensaver")
    expect(saver).to_be_hidden()
    page.clock.run_for(61_000)
    expect(saver).to_be_visible()
    shoot(page, "screensaver")

    tile = page.get_by_role("link", name="取件", exact=True)
    box = tile.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(saver).to_be_hidden()
    assert page.url.rstrip("/") == kiosk.url  # the waking tap did not open "Collect a parcel"

    page.clock.run_for(61_000)
    expect(saver).to_be_visible()
    kiosk.app.extensions["edge"].services.live.presence_seen()  # what the presence sensor's callback calls
    expect(saver).to_be_hidden()
    tile.click()
    expect(page.get_by_role("heading", name="取件", exact=True)).to_be_visible()
