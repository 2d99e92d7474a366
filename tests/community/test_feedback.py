from __future__ import annotations

import pytest

from edge.community import FeedbackError, FeedbackService
from edge.storage import Database

from tests.support.community import ALICE
from tests.support.station import outbox


def test_feedback_is_recorded_and_announced(feedback: FeedbackService, db: Database) -> None:
    given = feedback.submit(ALICE, "svc-meals", 5, "  饭菜很好  ")
    assert (given.rating, given.comment) == (5, "饭菜很好")
    [event] = outbox(db, "feedback.submitted")
    assert {k: event.data[k] for k in ("service_id", "rating", "comment", "resident_id")} == {
        "service_id": "svc-meals", "rating": 5, "comment": "饭菜很好", "resident_id": "res-1"}


def test_anonymous_feedback_without_comment(feedback: FeedbackService, db: Database) -> None:
    feedback.submit(None, "svc-insurance", 1, "")
    [event] = outbox(db, "feedback.submitted")
    assert (event.data["resident_id"], event.data["comment"]) == (None, None)


@pytest.mark.parametrize(("service_id", "rating", "comment", "code"), [
    ("svc-meals", 0, None, "bad_rating"),
    ("svc-meals", 6, None, "bad_rating"),
    ("svc-meals", 3.5, None, "bad_rating"),
    ("svc-meals", "5", None, "bad_rating"),
    ("svc-meals", True, None, "bad_rating"),
    ("svc-meals", 4, "长" * 501, "comment_too_long"),
    ("svc-gone", 4, None, "unknown_service"),
    ("svc-meals", 4, ["not", "text"], "bad_input"),
])
def test_bad_feedback_is_refused(feedback, db: Database, service_id, rating, comment, code) -> None:
    with pytest.raises(FeedbackError) as refused:
        feedback.submit(None, service_id, rating, comment)
    assert refused.value.code == code
    assert outbox(db) == []
