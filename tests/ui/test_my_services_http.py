"""我的服务 with a typed phone number (low assurance), server side: statuses show, the
resident's words, staff's replies and every cancel button do not, and a forged cancel is
refused."""
from __future__ import annotations

import pytest

from edge.community import Resident
from tests.support.screens import csrf_of, identify_by_phone as identify

pytestmark = pytest.mark.timeout(60)
ACTIVITY = "act-square-dance"


def test_a_phone_identity_sees_statuses_only_and_cannot_cancel(client, controller) -> None:  # noqa: F811
    services = controller.services
    alice = Resident("res-1001", "张*华", "138****8000", "qr")
    sent = services.requests.submit(alice, "repair", "厨房水龙头漏水", None, None)
    services.requests.update(sent.request_id, "done", "师傅已修好水龙头。", "王社工")
    services.activities.sign_up(alice, ACTIVITY)

    identify(client)  # a typed phone number
    page = client.get("/mine/").get_data(as_text=True)
    assert "已办好" in page and "只显示办理状态" in page
    for private in ("厨房水龙头漏水", "师傅已修好水龙头。", "取消报名", "取消"):
        assert private not in page.replace("如需查看工作人员回复或取消", "")

    refused = client.post(f"/mine/activities/{ACTIVITY}/cancel",
                          data={"csrf_token": csrf_of(client, "/mine/")}, follow_redirects=True)
    assert "请扫描App中的个人二维码" in refused.get_data(as_text=True)
    assert services.activities.attendance("res-1001", ACTIVITY) is not None


def test_my_services_asks_who_is_there_first(client) -> None:  # noqa: F811
    response = client.get("/mine/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/identify/")


def test_i_found_something_is_a_request_staff_follow_up(client, controller) -> None:  # noqa: F811
    identify(client)
    token = csrf_of(client, "/community/found")
    empty = client.post("/community/found", data={"csrf_token": token, "text": " ", "place": "二楼"},
                        follow_redirects=True)
    assert "请简单说明您的需求" in empty.get_data(as_text=True)  # refused in plain words, place kept
    assert 'value="二楼"' in client.get("/community/found").get_data(as_text=True)
    sent = client.post("/community/found", data={"csrf_token": token, "text": "一副老花镜",
                                                  "place": "二楼会议室"}, follow_redirects=True)
    assert "请把物品交到一楼前台" in sent.get_data(as_text=True)
    [item] = controller.services.requests.follow_ups_of("res-1001")
    assert (item.category, item.summary) == ("found_item", "一副老花镜")
