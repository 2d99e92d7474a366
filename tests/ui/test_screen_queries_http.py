"""The activities and 我的服务 screens read the database a fixed number of times per render,
however many activities (and sign-ups) there are: no query per row (issue 10)."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event
from zoneinfo import ZoneInfo

from edge.app import Controller
from edge.clock import iso_utc
from edge.community import Resident
from edge.kiosk_ui import create_app
from simulators.demo import demo_catalogue

pytestmark = pytest.mark.timeout(60)
ALICE = Resident("res-1001", "张*华", "138****8000", "qr")


@contextmanager
def counted(controller: Controller) -> Iterator[list[str]]:
    """Every SQL statement sent to the box's database while the block runs."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engines = (controller.db.writer, controller.db.reader)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)


def with_activities(controller: Controller, clock: Any, n: int) -> list[str]:
    """The demo catalogue with `n` activities, all ahead (sign-up open); the resident signs
    up for every other one. Returns their ids."""
    catalogue = demo_catalogue(clock.now(), ZoneInfo("Asia/Shanghai"), controller.settings.mqtt.site_id)
    template = catalogue["activities"][0]
    catalogue["activities"] = [
        {**template, "id": f"act-{n}-{i}", "capacity": 5,
         "starts_at": iso_utc(clock.now() + timedelta(days=1, hours=i)),
         "ends_at": iso_utc(clock.now() + timedelta(days=1, hours=i, minutes=45))}
        for i in range(n)]
    controller.services.catalogue.replace(catalogue)
    ids = [a["id"] for a in catalogue["activities"]]
    for activity_id in ids[::2]:
        controller.services.activities.sign_up(ALICE, activity_id)
    book_slots(controller, clock, n // 3)
    return ids


def book_slots(controller: Controller, clock: Any, wanted: int) -> None:
    """`wanted` more venue bookings for the resident (pending), in the coming days."""
    bookings, today = controller.services.bookings, clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date()
    already = len(bookings.bookings_of(ALICE.resident_id))
    free = ((venue.id, slot) for days in range(2, 30) for venue in controller.services.catalogue.venues()
            for slot in bookings.day_slots(venue.id, today + timedelta(days=days), ALICE.resident_id)
            if slot.state == "free")
    for _ in range(wanted):
        venue_id, slot = next(free)
        bookings.request(ALICE, venue_id, slot.start)
    assert len(bookings.bookings_of(ALICE.resident_id)) == already + wanted


def personal_code_visit(client: FlaskClient, controller: Controller) -> None:
    """As after scanning the app's personal code: high assurance, own sign-ups shown."""
    with client.session_transaction() as session:
        session["resident"] = {**dataclasses.asdict(ALICE), "assurance": "high"}


def statements_for(controller: Controller, clock: Any, n: int, path: str) -> tuple[int, str]:
    with_activities(controller, clock, n)
    client = create_app(controller).test_client()
    personal_code_visit(client, controller)
    client.get(path)  # templates compiled, session opened
    with counted(controller) as statements:
        page = client.get(path).get_data(as_text=True)
    return len(statements), page


@pytest.mark.parametrize("path", ["/activities/", "/mine/"])
def test_statements_per_render_do_not_grow_with_the_activities(controller, clock, path) -> None:
    few, few_page = statements_for(controller, clock, 3, path)
    many, many_page = statements_for(controller, clock, 12, path)
    # The pages did show the rows (and the resident's sign-ups), so the counts mean something.
    assert few_page.count("已报名") == 2 and many_page.count("已报名") == 6
    assert few == many


def test_the_activities_screen_shows_places_and_sign_ups_as_before(controller, clock) -> None:
    ids = with_activities(controller, clock, 4)
    activities = controller.services.activities
    listed = controller.services.catalogue.activities()
    board = activities.board(listed, ALICE.resident_id)
    assert [left for left, _mine in board] == [activities.places_left(i) for i in ids] == [4, 5, 4, 5]
    assert [mine for _left, mine in board] == [activities.attendance(ALICE.resident_id, i) for i in ids]
    assert [mine is not None for _left, mine in board] == [True, False, True, False]
    assert [left for left, mine in activities.board(listed, None)] == [4, 5, 4, 5]
    assert all(mine is None for _left, mine in activities.board(listed, None))
    assert activities.board([], ALICE.resident_id) == []


def test_a_finished_activity_is_offered_for_rating_and_rated_once(controller, clock) -> None:
    [activity_id, *_] = with_activities(controller, clock, 1)
    client = create_app(controller).test_client()
    personal_code_visit(client, controller)
    before = client.get("/mine/").get_data(as_text=True)
    assert f'name="subject_id" value="{activity_id}"' not in before  # not finished yet: nothing to rate

    clock.advance(days=2)  # the activity has ended
    personal_code_visit(client, controller)  # the resident comes back (the old visit timed out)
    page = client.get("/mine/").get_data(as_text=True)
    assert f'name="subject_id" value="{activity_id}"' in page
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    client.post("/mine/rate", data={"csrf_token": token, "kind": "activity", "subject_id": activity_id,
                                    "rating": "5"}, follow_redirects=True)
    assert ("activity", activity_id) in controller.services.feedback.rated_by(ALICE.resident_id)
    assert f'name="subject_id" value="{activity_id}"' not in client.get("/mine/").get_data(as_text=True)
