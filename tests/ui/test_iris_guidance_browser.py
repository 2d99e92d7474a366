"""Iris screens with live guidance (ADR 0144), in Chromium against the real controller in
simulate mode: the page's simulate control puts a too-far, blurred or half-closed eye in
front of the simulated camera, the guidance says so in words (from the capture's own
gates, over the live stream), and once the eye is good the capture takes itself: the door
opens; at enrolment a photo is refused by the live-eye check and the live eye enrols."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from simulators.camera import SimulatedCamera
from simulators.people import synthetic_person
from tests.support.browser import RESIDENT_PHONE, assert_accessible, shoot, type_on_keypad
from tests.support.platform import texted_code
from tests.support.station import Station, audits, wait_until
from tests.ui.test_identity_browser import deposit

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]
RESIDENT = "res-1001"  # the demo resident with RESIDENT_PHONE, first in the simulate control
SLOW = 30_000  # ms: the simulated camera renders each eye on a shared 2-core box


def guide_words(page):
    return page.locator(".iris-words span:not([hidden])")


def test_guidance_follows_the_camera_and_a_steady_good_eye_opens_the_door(page, kiosk: Station) -> None:
    parcel = deposit(kiosk, RESIDENT_PHONE)
    camera = SimulatedCamera(fps=None)
    camera.show_eye(synthetic_person(RESIDENT))
    kiosk.services.iris.enrol(RESIDENT, [camera.read() for _ in range(4)], consent=True,
                              recorded_how="test", assurance="high")

    page.goto("/iris/pickup")
    expect(page.locator("[data-iris-guide]")).not_to_have_attribute("data-guide", "waiting", timeout=SLOW)
    assert_accessible(page)
    scene = page.get_by_label("模拟：摄像头看到什么")
    for trouble, words in [("too_far", "请靠近一点"), ("blurred", "请保持不动"), ("closed", "请睁大眼睛")]:
        scene.select_option(trouble)
        expect(guide_words(page)).to_have_text(words, timeout=SLOW)
        expect(page.locator("[data-iris-guide]")).to_have_attribute("data-guide", trouble.replace("closed", "covered"))
        if trouble == "too_far":
            shoot(page, "iris-guide-too-far-zh")
    assert not kiosk.sim.is_open(*kiosk.door(parcel["compartment"]))  # nothing taken by itself yet
    assert kiosk.audits("iris_identify") == []

    scene.select_option("live")  # the resident fixes it: green, then the capture takes itself
    expect(page.locator("[data-live-when='state=door_open'] .door-number")).to_have_text(
        str(parcel["compartment"]), timeout=SLOW)
    assert kiosk.sim.is_open(*kiosk.door(parcel["compartment"]))
    [attempt] = kiosk.audits("iris_identify")
    assert attempt.result == "match"


def test_enrolment_refuses_a_photo_then_enrols_the_live_eye(page, kiosk: Station) -> None:
    page.goto("/iris/enrol")
    type_on_keypad(page, RESIDENT_PHONE)
    page.get_by_role("button", name="确认").click()
    page.get_by_role("button", name="发送验证码").click()
    type_on_keypad(page, texted_code(kiosk.outbox("identity.otp_requested")[-1]))
    page.get_by_role("button", name="确认", exact=True).click()
    page.get_by_role("button", name="我同意").click()
    expect(page.get_by_role("heading", name="拍摄眼睛照片")).to_be_visible()
    assert_accessible(page)

    page.get_by_label("模拟：摄像头看到什么").select_option("photo")  # someone else's eye, printed
    expect(page.get_by_role("alert")).to_contain_text("无法确认是真人眼睛，因此没有登记", timeout=SLOW)
    assert re.search(r"/iris/enrol$", page.url)
    assert not kiosk.services.iris.is_enrolled(RESIDENT)
    assert [a.result for a in kiosk.audits("iris_enrol")] == ["refused_not_live"]
    assert_accessible(page)
    shoot(page, "iris-enrol-photo-refused-zh")

    page.get_by_role("button", name="我同意").click()  # consent again, then the live eye
    page.get_by_label("模拟：摄像头看到什么").select_option("live")
    expect(page.get_by_role("status")).to_contain_text("虹膜登记完成", timeout=3 * SLOW)
    wait_until(lambda: kiosk.services.iris.is_enrolled(RESIDENT), what="enrolled")
    assert [a.result for a in audits(kiosk.db, "iris_enrol")][-1] == "enrolled"
