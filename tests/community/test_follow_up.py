"""我的服务 in the domain: staff's follow-up of requests and feedback (request.update), the
resident's list with its lights, and giving back an activity place."""
from __future__ import annotations

import pytest

from edge.clock import FakeClock
from edge.community import ActivityError, ActivityService, FeedbackService, RequestError, RequestService
from edge.storage import Database

from tests.support.community import ALICE, BOB
from tests.support.station import outbox


def test_staff_updates_a_request_and_the_resident_sees_status_and_reply(
        requests_service: RequestService, clock: FakeClock) -> None:
    sent = requests_service.submit(ALICE, "repair", "厨房水龙头漏水", "3栋502", None)
    requests_service.submit(BOB, "errand", "代取药", None, None)
    seen: list[tuple[str, dict]] = []
    requests_service.subscribe(lambda kind, data: seen.append((kind, data)))
    [mine] = requests_service.follow_ups_of("res-1")
    assert (mine.status, mine.reply, mine.stage(clock.now())) == ("received", None, "received")

    requests_service.update(sent.request_id, "in_progress", None, "王社工")
    clock.advance(minutes=30)
    requests_service.update(sent.request_id, "done", "师傅已修好。", None)
    [mine] = requests_service.follow_ups_of("res-1")
    assert (mine.status, mine.reply, mine.staff) == ("done", "师傅已修好。", "王社工")
    assert mine.stage(clock.now()) == "done" and mine.summary == "厨房水龙头漏水"
    assert [kind for kind, _ in seen] == ["request.updated", "request.updated"]


def test_unfinished_after_a_day_is_overdue_and_finished_never_is(requests_service, clock) -> None:
    late = requests_service.submit(ALICE, "home_care", "每周助浴", None, None)
    clock.advance(hours=24, minutes=1)
    [item] = requests_service.follow_ups_of("res-1")
    assert item.stage(clock.now()) == "overdue"
    requests_service.update(late.request_id, "closed", "已转交街道。", "李主任")
    [item] = requests_service.follow_ups_of("res-1")
    assert item.stage(clock.now()) == "closed"


def test_feedback_is_followed_up_like_a_request(requests_service: RequestService,
                                                feedback: FeedbackService) -> None:
    rated = feedback.submit(ALICE, "svc-meals", 2, "饭菜太咸")
    requests_service.update(rated.feedback_id, "done", "已转告厨房少放盐。", "王社工")
    [item] = requests_service.follow_ups_of("res-1")
    assert (item.kind, item.rating, item.reply) == ("feedback", 2, "已转告厨房少放盐。")


@pytest.mark.parametrize("item_id,status,reply,code", [
    ("nope", "done", None, "unknown_request"),
    (None, "finished", None, "bad_status"),
    (None, "done", "长" * 2001, "reply_too_long"),
])
def test_a_bad_update_is_refused_and_changes_nothing(requests_service, item_id, status, reply,
                                                     code) -> None:
    sent = requests_service.submit(ALICE, "repair", "门锁坏了", None, None)
    with pytest.raises(RequestError) as refused:
        requests_service.update(item_id or sent.request_id, status, reply, None)
    assert refused.value.code == code
    [item] = requests_service.follow_ups_of("res-1")
    assert (item.status, item.reply) == ("received", None)


def test_cancelling_a_sign_up_gives_the_place_back(activities: ActivityService, db: Database,
                                                   clock: FakeClock) -> None:
    activities.sign_up(ALICE, "talk")
    assert [a.activity_id for a in activities.signups_of("res-1")] == ["talk"]
    assert activities.places_left("talk") == 1
    activities.cancel_sign_up(ALICE, "talk")
    assert activities.signups_of("res-1") == [] and activities.places_left("talk") == 2
    [cancelled] = outbox(db, "activity.sign_up_cancelled")
    assert cancelled.data["activity_id"] == "talk"
    with pytest.raises(ActivityError) as twice:
        activities.cancel_sign_up(ALICE, "talk")
    assert twice.value.code == "not_signed_up"
    activities.sign_up(ALICE, "talk")
    clock.advance(hours=2)
    with pytest.raises(ActivityError) as started:
        activities.cancel_sign_up(ALICE, "talk")
    assert started.value.code == "started"


def test_a_request_without_a_phone_conforms_to_the_contract(requests_service, db: Database) -> None:
    """The contract's public-data rule wants a phone field to be a masked phone, never null."""
    from cloud_bridge import contract

    requests_service.submit(ALICE, "repair", "门锁坏了", None, None)
    [event] = outbox(db, "request.submitted")
    assert "phone_masked" not in event.data
    contract.validate("evt.request.submitted", {
        "message_id": "5b1c2d3e-0000-4000-8000-000000000001", "seq": 1, "ts": "2026-11-21T08:30:00.123Z",
        "site_id": "s", "device_id": "d", "type": "request.submitted", "data": event.data})


def test_finished_bookings_activities_and_requests_are_rated_once(
        feedback: FeedbackService, bookings, activities: ActivityService,
        requests_service: RequestService, db: Database, clock: FakeClock) -> None:
    from datetime import timedelta

    from edge.community import FeedbackError

    booking = next(bookings.request(ALICE, "hall", s.start) for s in
                   bookings.day_slots("hall", (clock.now() + timedelta(days=1)).date()) if s.state == "free")
    activities.sign_up(ALICE, "talk")
    asked = requests_service.submit(ALICE, "repair", "门锁坏了", None, None)
    for kind, subject in (("booking", booking.booking_id), ("activity", "talk"), ("request", asked.request_id)):
        with pytest.raises(FeedbackError) as early:  # not finished yet
            feedback.rate_finished(ALICE, kind, subject, 5)
        assert early.value.code == "not_finished"

    bookings.decide(booking.booking_id, approved=True)
    requests_service.update(asked.request_id, "done", "已修好。", "王社工")
    clock.advance(days=3)
    for kind, subject in (("booking", booking.booking_id), ("activity", "talk"), ("request", asked.request_id)):
        with pytest.raises(FeedbackError) as not_hers:
            feedback.rate_finished(BOB, kind, subject, 4)
        assert not_hers.value.code == "not_finished"
        feedback.rate_finished(ALICE, kind, subject, 4, " 很好 ")
        with pytest.raises(FeedbackError) as twice:
            feedback.rate_finished(ALICE, kind, subject, 4)
        assert twice.value.code == "already_rated"
    assert feedback.rated_by("res-1") == {("booking", booking.booking_id), ("activity", "talk"),
                                          ("request", asked.request_id)}
    rated = outbox(db, "feedback.submitted")
    assert [(e.data["subject_kind"], e.data["rating"], e.data["comment"]) for e in rated] == [
        ("booking", 4, "很好"), ("activity", 4, "很好"), ("request", 4, "很好")]
    assert all(e.data["service_id"] is None for e in rated)
