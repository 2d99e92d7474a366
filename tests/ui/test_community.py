"""Community screens as a resident: rooms, activities, help, the emergency button, notices,
services and feedback, each through to the service's outbox row."""
from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from simulators.demo import demo_token_issuer
from edge.storage import Priority
from tests.support.browser import RESIDENT_PHONE, assert_accessible, shoot, type_on_keypad
from tests.support.station import Station
from tests.support.platform import texted_code

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
VENUE = "venue-activity-room"


def identify_by_phone(page, confirm: str = "确认") -> None:
    type_on_keypad(page, RESIDENT_PHONE)
    page.get_by_role("button", name=confirm).click()


def confirm_with_texted_code(page, kiosk: Station) -> None:
    """On the "confirm it is you" screen: ask for the code, type a wrong one, then the one the
    platform texts (opened from the sealed event with the test platform key), by taps."""
    page.get_by_role("button", name="发送验证码").click()
    expect(page.get_by_role("status")).to_contain_text("验证码已发送至 138****8000，5分钟内有效。")
    assert_accessible(page)
    shoot(page, "confirm-code-zh")
    code = texted_code(kiosk.outbox("identity.otp_requested")[-1])
    type_on_keypad(page, f"{(int(code) + 1) % 1_000_000:06d}")
    page.get_by_role("button", name="确认", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("验证码不正确，请核对短信。")
    type_on_keypad(page, code)
    page.get_by_role("button", name="确认", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("谢谢，已确认是您本人。")


def test_book_a_room_pending_then_approved_live_then_cancel(page, kiosk: Station) -> None:
    bookings = kiosk.services.bookings
    # "Today" at the site: slots are laid out in its time zone, whatever UTC's date is.
    site_zone = ZoneInfo(kiosk.controller.settings.site.timezone)
    today = kiosk.controller.clock.now().astimezone(site_zone).date()
    day = next(today + timedelta(days=n) for n in range(1, 7)
               if any(s.state == "free" for s in bookings.day_slots(VENUE, today + timedelta(days=n))))
    page.goto("/")
    page.get_by_role("link", name="场地预约", exact=True).click()
    assert_accessible(page)
    shoot(page, "venues-zh")
    page.get_by_role("link", name="查看空闲时段").first.click()
    page.goto(f"/venues/{VENUE}?day={day.isoformat()}")
    first_free = page.get_by_role("button", name=re.compile(r"^预约 \d\d:\d\d$")).first
    label = first_free.inner_text()
    assert page.get_by_text("可预约").first.is_visible()  # state in words, not colour only
    assert_accessible(page)
    shoot(page, "venue-day-zh")
    first_free.click()

    assert page.get_by_role("heading", name="请确认身份").is_visible()
    identify_by_phone(page)
    # The slot tapped before identifying is booked after it, with no second tap; then "my
    # bookings" asks for the code texted to the phone first (a typed phone is low assurance).
    expect(page.get_by_role("heading", name="确认是您本人")).to_be_visible()
    confirm_with_texted_code(page, kiosk)
    expect(page.get_by_role("heading", name="我的预约")).to_be_visible()
    expect(page.get_by_text("等待审批", exact=True)).to_be_visible()
    [booking] = bookings.bookings_of("res-1001")
    assert booking.state == "pending"
    assert len(kiosk.outbox("booking.requested")) == 1
    shoot(page, "my-bookings-pending-zh")

    bookings.decide(booking.booking_id, approved=True)  # as the cloud's booking.decision does
    expect(page.get_by_text("已批准")).to_be_visible()  # pushed, no reload
    expect(page.get_by_text("等待审批", exact=True)).to_be_hidden()
    assert_accessible(page)

    page.get_by_role("button", name=re.compile("取消 .* 的预约")).click()
    expect(page.get_by_role("status")).to_contain_text("预约已取消")
    assert bookings.booking(booking.booking_id).state == "cancelled"


def test_activity_sign_in_with_a_scanned_personal_code(page, kiosk: Station) -> None:
    issuer = demo_token_issuer(kiosk.controller.settings.keys_dir)
    token = issuer.issue("res-1002", "李*", kiosk.controller.clock.now() + timedelta(minutes=5))
    page.goto("/")
    page.get_by_role("button", name="English").click()
    page.get_by_role("link", name="Activities", exact=True).click()
    assert page.get_by_text(re.compile(r"\d+ of \d+ left")).first.is_visible()
    assert_accessible(page)
    shoot(page, "activities-en")
    page.get_by_role("button", name=re.compile("^Sign in to Health talk")).click()

    # The scanner posts what it read; the waiting page claims it by itself.
    assert page.get_by_role("heading", name="Tell us who you are").is_visible()
    assert_accessible(page)
    shoot(page, "identify-en")
    response = page.request.post("/live/scanner", data={"code": token})
    assert response.ok
    # The sign-in tapped before identifying is completed once the code is read.
    expect(page.get_by_role("status").first).to_contain_text("Welcome, 李*.")
    expect(page.get_by_text("You are signed in")).to_be_visible()
    [signin] = kiosk.outbox("signin.recorded")
    assert signin.data["resident_id"] == "res-1002"


def test_help_request_then_emergency_to_the_outbox(page, kiosk: Station) -> None:
    page.goto("/")
    page.get_by_role("link", name="求助", exact=True).click()
    page.get_by_role("button", name="提交求助").click()  # nothing chosen: the browser asks
    page.get_by_role("radio", name="维修").click()
    page.get_by_role("textbox", name="请简单描述").fill("厨房水龙头漏水")
    page.get_by_role("textbox", name="地址（楼栋、门牌号）").fill("3栋502")
    type_on_keypad(page, "13912345678")
    assert_accessible(page)
    shoot(page, "help-form-zh")
    page.get_by_role("button", name="提交求助").click()
    expect(page.get_by_role("heading", name="已提交")).to_be_visible()
    assert page.get_by_text("139****5678").is_visible()
    [normal] = kiosk.outbox("request.submitted")
    assert normal.priority == Priority.NORMAL and normal.data["category"] == "repair"

    # The emergency button is on every screen; "No" sends nothing.
    page.get_by_role("link", name="紧急求助").click()
    page.get_by_role("link", name="不，返回").click()
    assert len(kiosk.outbox("request.submitted")) == 1
    page.get_by_role("button", name="English").click()
    page.get_by_role("link", name="Emergency").click()
    assert page.get_by_role("heading", name="Are you sure? Staff will be called now.").is_visible()
    assert_accessible(page)
    shoot(page, "emergency-confirm-en")
    page.get_by_role("button", name="Yes, call staff now").click()
    expect(page.get_by_role("heading", name="Help is on the way")).to_be_visible()
    expect(page.get_by_text("call 120")).to_be_visible()
    shoot(page, "emergency-sent-en")
    emergency = kiosk.outbox("request.submitted")[-1]
    assert emergency.priority == Priority.EMERGENCY
    assert emergency.data["priority"] == "emergency"


def test_notices_services_and_feedback(page, kiosk: Station) -> None:
    page.goto("/")
    page.get_by_role("link", name="通知与政策", exact=True).click()
    page.get_by_role("link", name="政策指南").click()
    page.get_by_role("link", name=re.compile("高龄老人津贴申领指南")).click()
    assert page.get_by_role("heading", name="高龄老人津贴申领指南").is_visible()
    assert page.get_by_text("咨询部门").is_visible()
    assert page.get_by_text(re.compile(r"\d+月\d+日")).first.is_visible()
    assert_accessible(page)
    shoot(page, "policy-zh")

    page.get_by_role("link", name="首页").click()
    page.get_by_role("link", name="服务目录", exact=True).click()
    page.get_by_role("link", name="个性化服务").click()
    assert page.get_by_role("heading", name="居家养老服务").is_visible()
    assert page.get_by_text("办理方式").first.is_visible()
    assert_accessible(page)

    page.get_by_role("link", name="首页").click()
    page.get_by_role("link", name="评价", exact=True).click()
    page.get_by_role("combobox", name="评价哪项服务？").select_option("svc-meals")
    page.get_by_role("radio", name="5 非常满意").click()
    page.get_by_role("textbox", name="意见（可不填）").fill("饭菜很好吃")
    assert page.get_by_role("radio", name="5 非常满意").is_checked()
    assert_accessible(page)
    shoot(page, "feedback-zh")
    page.get_by_role("button", name="提交评价").click()
    expect(page.get_by_role("status")).to_contain_text("感谢您的评价")
    [rating] = kiosk.outbox("feedback.submitted")
    assert rating.data["rating"] == 5 and rating.data["service_id"] == "svc-meals"
