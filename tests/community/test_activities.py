from __future__ import annotations

import pytest

from edge.clock import FakeClock
from edge.community import ActivityError, ActivityService, Resident
from edge.storage import Database

from tests.support.community import ALICE, BOB
from tests.support.station import outbox

CAROL = Resident("res-3", "陈*梅", "136****5432", "qr")
# "talk": 10:00-11:00 UTC, capacity 2, sign-in 09:30-10:15 UTC; the clock starts at 08:00.


def test_sign_up_counts_places_and_refuses_doubles_and_overflow(activities: ActivityService,
                                                                 db: Database) -> None:
    assert activities.places_left("talk") == 2
    assert activities.sign_up(ALICE, "talk").places_left == 1
    with pytest.raises(ActivityError) as double:
        activities.sign_up(ALICE, "talk")
    assert double.value.code == "already_signed_up"
    assert activities.sign_up(BOB, "talk").places_left == 0
    with pytest.raises(ActivityError) as full:
        activities.sign_up(CAROL, "talk")
    assert full.value.code == "full"
    assert [e.data["resident_id"] for e in outbox(db, "activity.signed_up")] == ["res-1", "res-2"]


def test_no_sign_up_once_started(activities: ActivityService, clock: FakeClock) -> None:
    clock.advance(hours=2)
    with pytest.raises(ActivityError) as refused:
        activities.sign_up(ALICE, "talk")
    assert refused.value.code == "started"


def test_sign_in_only_within_the_window(activities: ActivityService, clock: FakeClock,
                                        db: Database) -> None:
    activities.sign_up(ALICE, "talk")
    clock.advance(hours=1, minutes=29)  # 09:29, a minute before sign-in opens
    with pytest.raises(ActivityError) as early:
        activities.sign_in(ALICE, "talk")
    assert early.value.code == "signin_not_open"
    clock.advance(minutes=1)
    attendance = activities.sign_in(ALICE, "talk")
    assert attendance.signed_in_at == clock.now()
    [event] = outbox(db, "signin.recorded")
    assert event.data == {"activity_id": "talk", "resident_id": "res-1", "method": "qr",
                          "time": "2026-11-21T09:30:00.000Z"}
    clock.advance(minutes=45, seconds=1)  # 10:15:01, just after the window closes
    with pytest.raises(ActivityError) as late:
        activities.sign_in(BOB, "talk")
    assert late.value.code == "signin_closed"


def test_signing_in_twice_records_once(activities: ActivityService, clock: FakeClock,
                                       db: Database) -> None:
    clock.advance(hours=2)
    first = activities.sign_in(BOB, "talk")
    clock.advance(minutes=5)
    second = activities.sign_in(BOB, "talk")
    assert second.signed_in_at == first.signed_in_at
    [event] = outbox(db, "signin.recorded")
    assert event.data["method"] == "phone"  # BOB identified by typing his phone number
    clock.advance(hours=1)  # after the window: a repeat still answers, it changes nothing
    assert activities.sign_in(BOB, "talk").signed_in_at == first.signed_in_at


def test_walk_in_sign_in_takes_a_place_and_is_refused_when_full(activities, clock) -> None:
    activities.sign_up(ALICE, "talk")
    activities.sign_up(BOB, "talk")
    clock.advance(hours=2)
    with pytest.raises(ActivityError) as full:
        activities.sign_in(CAROL, "talk")
    assert full.value.code == "full"
    assert activities.sign_in(ALICE, "talk").places_left == 0
    assert activities.attendance("res-3", "talk") is None


def test_unknown_activity_is_a_clear_error(activities: ActivityService) -> None:
    from edge.community import CatalogueError

    with pytest.raises(CatalogueError) as refused:
        activities.sign_up(ALICE, "nope")
    assert refused.value.code == "unknown_activity"
