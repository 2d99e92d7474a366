"""A choice made before identifying is completed after it (server side, no browser): a
sign-up tapped by someone not yet identified, then a phone typed, signs them up once; walking
away to another screen in between drops the choice."""
from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support.screens import csrf_of, identify_by_phone as identify

pytestmark = pytest.mark.timeout(60)
PHONE = "13800138000"  # res-1001 in the demo catalogue
ACTIVITY = "act-smartphone-class"


def sign_up_anonymously(client: FlaskClient) -> Any:
    token = csrf_of(client, "/activities/")
    return client.post(f"/activities/{ACTIVITY}/sign-up", data={"csrf_token": token},
                       headers={"Referer": "http://localhost/activities/"})


def test_a_sign_up_tapped_before_identifying_is_done_after_it(client, controller) -> None:
    asked = sign_up_anonymously(client)
    assert asked.status_code == 302 and asked.headers["Location"].startswith("/identify/")
    assert controller.services.activities.attendance("res-1001", ACTIVITY) is None

    done = identify(client)
    assert done.headers["Location"] == "/activities/"
    page = client.get("/activities/").get_data(as_text=True)
    assert "报名成功" in page  # the view's own confirmation, shown after identifying
    assert controller.services.activities.attendance("res-1001", ACTIVITY) is not None

    identify(client)  # identifying again later does not repeat the choice
    with controller.db.read() as s:
        from edge.storage import OutboxEvent
        from sqlalchemy import select
        sign_ups = s.scalars(select(OutboxEvent).where(OutboxEvent.type == "activity.signed_up")).all()
    assert len(sign_ups) == 1


def test_walking_away_from_identifying_drops_the_choice(client, controller) -> None:
    sign_up_anonymously(client)
    client.get("/identify/?next=/activities/")  # still identifying: kept
    client.get("/notices/")  # walked away
    identify(client)
    assert controller.services.activities.attendance("res-1001", ACTIVITY) is None
