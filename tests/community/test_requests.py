from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from edge.community import RequestError, RequestService
from edge.community.models import RequestRow
from edge.storage import Database, Priority, StorageFull

from tests.support.community import ALICE
from tests.support.station import outbox


def test_a_request_carries_only_the_masked_phone(requests_service: RequestService,
                                                 db: Database) -> None:
    request = requests_service.submit(None, "repair", " 厨房水龙头漏水 ", "海滨路18号3栋502",
                                      "+86 139 1234 5678")
    assert (request.priority, request.phone_masked) == ("normal", "139****5678")
    assert "working day" in request.next_steps["en"]
    [event] = outbox(db, "request.submitted")
    assert event.priority == Priority.NORMAL
    assert event.data["phone_masked"] == "139****5678"
    assert event.data["description"] == "厨房水龙头漏水" and event.data["priority"] == "normal"
    assert "13912345678" not in json.dumps(event.data)
    with db.read() as s:  # kept on the box for the staff call-back (ADR 0053)
        assert s.scalar(select(RequestRow.phone)) == "13912345678"


def test_emergency_goes_first_and_says_what_happens_next(requests_service, db: Database) -> None:
    requests_service.submit(ALICE, "home_care", "每周助浴", None, None)
    emergency = requests_service.submit(ALICE, "home_care", "老人摔倒了", "3栋502", None,
                                        emergency=True)
    assert emergency.priority == "emergency"
    assert "10 minutes" in emergency.next_steps["en"] and "120" in emergency.next_steps["en"]
    assert "10分钟" in emergency.next_steps["zh"]
    normal, urgent = outbox(db, "request.submitted")
    assert (urgent.priority, urgent.data["priority"]) == (Priority.EMERGENCY, "emergency")
    assert urgent.data["resident_id"] == "res-1"
    assert urgent.priority < normal.priority  # the bridge publishes lowest first


def test_the_emergency_button_alone_is_enough(requests_service, db: Database) -> None:
    request = requests_service.submit(None, "emergency", "", None, None)
    assert request.priority == "emergency"
    [event] = outbox(db, "request.submitted")
    assert event.priority == Priority.EMERGENCY


@pytest.mark.parametrize(("resident", "category", "description", "address", "phone", "code"), [
    (None, "shopping", "x", None, "13912345678", "bad_category"),
    (None, "repair", "   ", None, "13912345678", "description_required"),
    (None, "repair", "x" * 1001, None, "13912345678", "description_too_long"),
    (None, "repair", "x", "y" * 201, "13912345678", "address_too_long"),
    (None, "repair", "x", None, "", "phone_required"),
    (ALICE, "repair", "x", None, "0755-1234", "bad_phone"),
    (ALICE, "repair", 42, None, None, "bad_input"),
    (ALICE, "repair", "x", {"street": 1}, None, "bad_input"),
])
def test_bad_requests_are_refused_and_nothing_is_stored(
        requests_service, db: Database, resident, category, description, address, phone, code) -> None:
    with pytest.raises(RequestError) as refused:
        requests_service.submit(resident, category, description, address, phone)
    assert refused.value.code == code and refused.value.message
    assert outbox(db) == []


def test_a_full_outbox_refuses_the_request_and_stores_nothing(requests_service, db: Database) -> None:
    from edge.storage.outbox import set_budget

    requests_service.submit(ALICE, "repair", "门锁坏了", None, None)
    with db.write() as s:
        set_budget(s, max_rows=1, max_bytes=1_000_000)  # the one waiting event fills it
    for emergency in (False, True):
        with pytest.raises(StorageFull):
            requests_service.submit(ALICE, "repair", "水管爆了", None, None, emergency=emergency)
    with db.read() as s:
        assert [r.description for r in s.scalars(select(RequestRow))] == ["门锁坏了"]
    assert len(outbox(db, "request.submitted")) == 1
