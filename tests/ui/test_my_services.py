"""我的服务 in Chromium, in Chinese, by taps: a help request sent from the kiosk is taken by
the simulated cloud's staff (yellow, 处理中) and finished with a reply (green, 已办好), pushed to
the open page; a sign-up is cancelled there. The bridge talks to a real Mosquitto."""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from simulators.cloud import CloudSimulator, SimulatedStaff
from simulators.demo import demo_token_issuer
from tests.support.browser import assert_accessible, shoot
from tests.support.station import Station

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
REPLY = "师傅明天上午九点上门维修水龙头。"


@pytest.fixture
def staff() -> SimulatedStaff:
    held = SimulatedStaff(name="王社工", reply=REPLY)
    held.released.clear()  # the test lets staff finish once it has seen "in progress"
    return held


@pytest.fixture
def kiosk_settings(broker: Any) -> dict[str, Any]:
    return {"mqtt": {"host": broker.host, "port": broker.port}}


@pytest.fixture
def cloud(broker: Any, staff: SimulatedStaff) -> Any:
    simulated = CloudSimulator(broker.host, broker.port, decide=None, staff=staff).start()
    assert simulated.connected.wait(15)
    yield simulated
    staff.released.set()
    simulated.stop()


def identify_with_personal_code(page: Any, kiosk: Station) -> None:
    issuer = demo_token_issuer(kiosk.controller.settings.keys_dir)
    token = issuer.issue("res-1001", "张*华", kiosk.controller.clock.now() + timedelta(minutes=5))
    expect(page.get_by_role("heading", name="请确认身份")).to_be_visible()
    assert page.request.post("/live/scanner", data={"code": token}).ok
    expect(page.get_by_role("status").first).to_contain_text("欢迎您，张*华")


def assert_targets_at_least_60px(page: Any) -> None:
    sizes = page.evaluate("""[...document.querySelectorAll('main a, main button')]
        .filter(e => e.offsetParent !== null)
        .map(e => { const r = e.getBoundingClientRect(); return [e.textContent.trim(), r.width, r.height]; })""")
    small = [s for s in sizes if s[1] < 60 or s[2] < 60]
    assert sizes and not small, small


def test_a_request_turns_from_yellow_to_green_when_staff_finish_it(page, kiosk: Station, cloud,
                                                                     staff: SimulatedStaff) -> None:
    page.goto("/")
    page.get_by_role("link", name="我的服务", exact=True).click()
    identify_with_personal_code(page, kiosk)
    expect(page.get_by_role("heading", name="我的服务", exact=True)).to_be_visible()
    expect(page.get_by_text("您还没有提交过求助或意见。")).to_be_visible()

    page.get_by_role("link", name="求助", exact=True).first.click()
    page.get_by_role("radio", name="维修").click()
    page.get_by_role("textbox", name="请简单描述").fill("厨房水龙头漏水")
    page.get_by_role("button", name="提交求助").click()
    expect(page.get_by_role("heading", name="已提交")).to_be_visible()

    page.get_by_role("link", name="首页", exact=True).click()
    page.get_by_role("link", name="我的服务", exact=True).click()
    taken = page.locator(".light-yellow", has_text="处理中")
    expect(taken).to_be_visible(timeout=30_000)  # staff took it: in_progress from the cloud
    expect(page.get_by_text("厨房水龙头漏水")).to_be_visible()
    expect(page.get_by_text("暂无回复")).to_be_visible()
    page.evaluate("window.notReloaded = true")
    assert_accessible(page)
    assert_targets_at_least_60px(page)
    shoot(page, "my-services-in-progress-zh")

    staff.released.set()  # staff finish the job and reply
    done = page.locator(".light-green", has_text="已办好")
    expect(done).to_be_visible(timeout=30_000)
    expect(taken).to_be_hidden()
    expect(page.get_by_text(REPLY)).to_be_visible()
    expect(page.get_by_text("王社工")).to_be_visible()
    assert page.evaluate("window.notReloaded === true")  # pushed live, no reload
    [item] = kiosk.services.requests.follow_ups_of("res-1001")
    assert (item.status, item.reply) == ("done", REPLY)
    assert not cloud.violations
    assert_accessible(page)
    shoot(page, "my-services-done-zh")

    # Finished: the resident rates it with one big star button.
    page.reload()
    rate = page.locator(".rate-card", has_text="维修")
    expect(rate).to_be_visible()
    assert_targets_at_least_60px(page)
    assert_accessible(page)
    shoot(page, "my-services-rate-zh")
    rate.get_by_role("button", name="5 非常满意").click()
    expect(page.get_by_role("status").first).to_contain_text("感谢您的评价")
    expect(page.locator(".rate-card")).to_have_count(0)
    rated = kiosk.outbox("feedback.submitted")[-1]
    assert (rated.data["subject_kind"], rated.data["subject_id"], rated.data["rating"]) == (
        "request", item.item_id, 5)


def test_a_sign_up_is_cancelled_from_my_services(page, kiosk: Station) -> None:
    page.goto("/activities/")
    page.get_by_role("button", name=re.compile("^报名：广场舞排练")).click()
    identify_with_personal_code(page, kiosk)
    expect(page.get_by_text("报名成功")).to_be_visible()  # the choice survived identifying
    page.get_by_role("link", name="首页", exact=True).click()
    page.get_by_role("link", name="我的服务", exact=True).click()
    cancel = page.get_by_role("button", name=re.compile("^取消报名：广场舞排练"))
    expect(cancel).to_be_visible()  # the page is there before it is measured
    assert_targets_at_least_60px(page)
    cancel.click()
    expect(page.get_by_role("status").first).to_contain_text("报名已取消")
    expect(page.get_by_text("您还没有报名活动。")).to_be_visible()
    assert kiosk.services.activities.signups_of("res-1001") == []
    assert len(kiosk.outbox("activity.sign_up_cancelled")) == 1


def test_one_tap_from_a_catalogue_service_to_a_sent_request(page, kiosk: Station) -> None:
    page.goto("/")
    page.get_by_role("link", name="服务目录", exact=True).click()
    page.get_by_role("link", name="个性化服务").click()
    expect(page.get_by_text("在首页“求助”中选择“居家照护”")).to_be_visible()  # names as on screen
    assert_accessible(page)
    assert_targets_at_least_60px(page)
    shoot(page, "services-apply-zh")
    page.get_by_role("link", name="申请：居家养老服务").click()

    expect(page.get_by_role("radio", name="居家照护")).to_be_checked()
    expect(page.get_by_role("textbox", name="请简单描述")).to_have_value("我要申请：居家养老服务")
    page.locator(".keypad").wait_for()
    for digit in "13912345678":
        page.locator(".keypad").get_by_role("button", name=digit, exact=True).click()
    page.get_by_role("button", name="提交求助").click()
    expect(page.get_by_role("heading", name="已提交")).to_be_visible()
    [sent] = kiosk.outbox("request.submitted")
    assert (sent.data["category"], sent.data["description"]) == ("home_care", "我要申请：居家养老服务")


@pytest.fixture
def quick_staff(staff: SimulatedStaff) -> SimulatedStaff:
    staff.released.set()
    return staff


def test_community_information_and_a_letter_answered_by_the_secretary(page, kiosk: Station, cloud,
                                                                      quick_staff) -> None:
    page.goto("/")
    page.get_by_role("link", name="通知与政策", exact=True).click()
    page.get_by_role("link", name="社区简介", exact=True).click()
    expect(page.get_by_text("海滨路18号").first).to_be_visible()  # the synced address
    expect(page.get_by_text("0755-84401234").first).to_be_visible()
    expect(page.get_by_role("img", name="地图：服务站位置")).to_be_visible()  # synced, not fetched
    assert page.evaluate("document.querySelector('.station-map').naturalWidth") > 0
    assert_accessible(page)
    shoot(page, "community-about-zh")
    page.get_by_role("link", name="党务公开", exact=True).click()
    expect(page.get_by_role("link", name=re.compile("2026年度工作计划"))).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("防台风"))).to_be_hidden()  # filtered by kind
    page.get_by_role("link", name="失物招领", exact=True).click()
    expect(page.get_by_role("link", name=re.compile("黑色长柄雨伞"))).to_be_visible()
    assert_accessible(page)
    assert_targets_at_least_60px(page)
    shoot(page, "community-found-zh")

    page.get_by_role("link", name="居务公开", exact=True).click()
    page.get_by_role("link", name="写信给社区书记").click()
    identify_with_personal_code(page, kiosk)
    expect(page.get_by_role("heading", name="书记信箱")).to_be_visible()
    page.get_by_role("textbox", name=re.compile("信的内容")).fill("建议在海滨路增设长椅")
    assert_accessible(page)
    shoot(page, "letter-zh")
    page.get_by_role("button", name="发送").click()
    expect(page.get_by_role("heading", name="我的服务", exact=True)).to_be_visible()
    letter = page.locator(".followup", has_text="书记信箱")
    expect(letter.get_by_text(quick_staff.reply)).to_be_visible(timeout=30_000)  # live
    expect(letter.locator(".light-green", has_text="已办好")).to_be_visible()
    [sent] = kiosk.outbox("request.submitted")
    assert (sent.data["category"], sent.data["description"]) == ("letter", "建议在海滨路增设长椅")
    assert not cloud.violations
