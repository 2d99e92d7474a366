"""What the community tests share: the site, two residents, times in UTC and Shanghai, and a
valid catalogue.sync payload to vary."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from edge.community import Resident, phone_hash

SHANGHAI = ZoneInfo("Asia/Shanghai")
SITE_ID = "dapeng-nanao-01"
EVERY_DAY_HALL = [{"weekday": d, "open": o, "close": c}
                  for d in range(7) for o, c in (("09:00", "12:00"), ("14:00", "21:00"))]
ALICE = Resident("res-1", "张*华", "138****8000", "qr")
BOB = Resident("res-2", "李*", "139****5678", "phone")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def bi(zh: str, en: str = "") -> dict[str, str]:
    return {"zh": zh, "en": en or zh}


def payload(**changes: Any) -> dict[str, Any]:
    """A valid catalogue.sync payload; keyword arguments replace top-level parts."""
    start = utc(2026, 11, 21, 8, 0)  # the fake clock's now
    data: dict[str, Any] = {
        "version": "2026-11-21T07:00:00Z",
        "station": {"name": bi("南澳社区服务站", "Nan'ao station"), "opening_hours": "08:30-20:00",
                    "address": bi("海滨路18号", "18 Haibin Road"), "phone": "0755-84401234"},
        "services": [
            {"id": "svc-insurance", "category": "public", "name": bi("社保", "Insurance")},
            {"id": "svc-booking", "category": "venue", "name": bi("场地预约", "Room booking")},
            {"id": "svc-meals", "category": "personal", "name": bi("长者助餐", "Meals")},
            {"id": "svc-policy", "category": "policy", "name": {"zh": "政策咨询"}},
        ],
        "venues": [
            {"id": "hall", "name": bi("活动室", "Activity room"), "capacity": 40,
             "facilities": [bi("投影仪", "Projector")], "opening_hours": EVERY_DAY_HALL,
             "slot_minutes": 60, "cancel_before_minutes": 120},
            {"id": "studio", "name": bi("书画室", "Studio"), "capacity": 12,
             "opening_hours": [{"weekday": 0, "open": "09:00", "close": "17:00"}],
             "slot_minutes": 120, "cancel_before_minutes": 60},
        ],
        "activities": [
            {"id": "talk", "title": bi("健康讲座", "Health talk"), "capacity": 2,
             "starts_at": (start + timedelta(hours=2)).isoformat(),
             "ends_at": (start + timedelta(hours=3)).isoformat(),
             "signin_opens_minutes_before": 30, "signin_closes_minutes_after": 15},
            {"id": "late", "title": bi("夜间讲座", "Late talk"), "capacity": 10,
             # 2026-11-22 01:00 in Shanghai: the next local day, though still the 21st in UTC.
             "starts_at": "2026-11-21T17:00:00Z", "ends_at": "2026-11-21T18:00:00Z"},
        ],
        "notices": [
            {"id": "n-old", "kind": "notice", "title": bi("停水"), "body": bi("周六停水"),
             "published_at": "2026-11-01T00:00:00Z", "office": bi("社区工作站"), "contact": "123"},
            {"id": "n-new", "kind": "notice", "title": bi("防台风"), "body": bi("注意安全"),
             "published_at": "2026-11-20T00:00:00Z"},
            {"id": "p-allowance", "kind": "policy", "title": bi("高龄津贴"), "body": bi("80岁以上"),
             "published_at": "2026-11-10T00:00:00Z", "office": bi("民政局", "Civil affairs")},
        ],
        "residents": [
            {"resident_id": "res-1", "name_masked": "张*华", "phone_masked": "138****8000",
             "phone_hash": phone_hash(SITE_ID, "13800138000")},
        ],
    }
    data.update(changes)
    return data
