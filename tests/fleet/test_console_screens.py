"""The console's new pages in Debian's Chromium: Chinese first, readable at 1280x800 (a staff
desk) and 1080x1920 (a portrait screen), no serious accessibility faults. Screenshots go to
artifacts/screenshots for a reviewer."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from fleet.console import accounts, lost_found
from fleet.console.app import create_app
from fleet.console.catalogue import save_catalogue
from fleet.console.followup import update_request
from fleet.settings import load_settings
from simulators.cloud import load_catalogue
from tests.fleet.test_console import PASSWORD, T0, clock, event, ingest, tree  # noqa: F401 - fixtures
from tests.support.browser import LANDSCAPE, assert_accessible, shoot
from tests.support.station import serve_until_closed

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def request(site: str, seq: int, request_id: str, category: str, text: str, hours_ago: float,
            where: str | None = None, phone: str = "138****5678"):
    at = T0 - timedelta(hours=hours_ago)
    return event(site, seq, "request.submitted",
                 {"request_id": request_id, "category": category, "priority": "normal", "description": text,
                  "address": where, "phone_masked": phone, "resident_id": "res-1"}, at)


@pytest.fixture
def console_url(database_url, tree, pg, clock):  # noqa: ANN001, F811
    ingest(pg,
           request("site-1", 1, "lt-1001", "letter", "小区东门的路灯坏了一周了，晚上出入很不安全，请尽快安排维修。", 30),
           request("site-1", 2, "lt-1002", "letter", "建议在社区广场增设几张长椅，方便老人休息。", 5, phone="139****0001"),
           request("site-1", 3, "lt-1003", "letter", "感谢社区组织的义诊活动，希望以后多办。", 2),
           request("site-1", 4, "fd-2001", "found_item", "一串钥匙，带红色挂件", 1, where="3栋电梯口"),
           request("site-1", 5, "fd-2002", "found_item", "儿童水壶（蓝色）", 3, where="社区广场长椅上"))
    staff = accounts.staff_by_id(pg, accounts.authenticate(pg, "c1", PASSWORD, T0).id)
    save_catalogue(pg, staff, "site-1", "kiosk-01", load_catalogue(None, "site-1"), T0)
    update_request(pg, staff, "site-1", "kiosk-01", "lt-1003", "done", "谢谢您的肯定，下月还有一次义诊。", T0)
    lost_found.publish(pg, staff, "site-1", "kiosk-01", item="黑色双肩包", found_where="服务站二楼会议室",
                       claim_at="服务站一楼前台", contact="0755-84401234", now=T0 - timedelta(hours=20))
    returned = lost_found.publish(pg, staff, "site-1", "kiosk-01", item="老花镜一副", found_where="快递柜旁",
                                  claim_at="服务站一楼前台", now=T0 - timedelta(days=2))
    lost_found.mark_returned(pg, staff, returned.id, "失主张阿姨本人领取", T0 - timedelta(hours=3))
    pg.commit()
    from waitress.server import create_server

    server = create_server(create_app(load_settings(database_url=database_url), now=clock.now),
                           host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=serve_until_closed, args=(server,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.task_dispatcher.shutdown(timeout=5)
    server.close()
    thread.join(5)


def test_the_mailbox_and_lost_and_found_pages_in_chromium(browser, console_url) -> None:  # noqa: ANN001
    context = browser.new_context(viewport=LANDSCAPE)
    page = context.new_page()
    try:
        page.goto(f"{console_url}/login")
        page.get_by_label("用户名").fill("c1")
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.get_by_role("link", name="书记信箱").click()
        page.wait_for_selector("tr.letter")
        assert page.locator("h1").inner_text() == "书记信箱"
        assert page.locator("tr.letter").count() == 3
        assert page.locator("tr.letter.overdue").count() == 1  # 30 h unanswered: red
        assert_accessible(page)
        shoot(page, "console-mailbox")

        page.locator("tr.letter", has_text="长椅").get_by_role("link", name="查看并回复").click()
        page.get_by_label("回复居民").fill("已转街道城建科，下周实地查看。")
        page.get_by_role("button", name="发送到服务站").click()
        page.wait_for_selector("tr.update")
        assert "已转街道城建科" in page.locator("tr.update").inner_text()
        assert_accessible(page)
        shoot(page, "console-letter")

        page.get_by_role("link", name="失物招领").first.click()
        page.wait_for_selector("tr.found-item")
        assert page.locator("tr.found-item").count() == 1 and page.locator("tr.returned-item").count() == 1
        page.locator("tr.report", has_text="钥匙").get_by_role("link", name="发布").click()
        assert page.get_by_label("物品", exact=True).input_value() == "一串钥匙，带红色挂件"
        page.get_by_label("认领地点").fill("服务站一楼前台")
        page.get_by_role("button", name="发布到一体机").click()
        page.wait_for_selector("text=「一串钥匙，带红色挂件」已发布到 site-1/kiosk-01。")
        assert page.locator("tr.found-item").count() == 2
        assert "已发布" in page.locator("tr.report", has_text="钥匙").inner_text()
        assert_accessible(page)
        shoot(page, "console-lost-found")

        page.get_by_role("link", name="English").click()
        page.get_by_role("link", name="Secretary's mailbox").click()
        page.wait_for_selector("tr.letter")
        assert page.locator("h1").inner_text() == "Secretary's mailbox"
        assert "Read and reply" in page.locator("tr.letter").first.inner_text()
        shoot(page, "console-mailbox-en")
    finally:
        context.close()
