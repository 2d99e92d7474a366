"""Feedback on a catalogue service: a 1-5 rating and an optional short comment."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from edge.clock import Clock, iso_utc
from edge.community.catalogue import CatalogueService
from edge.community.errors import CatalogueError, FeedbackError
from edge.community.models import FeedbackRow
from edge.community.residents import Resident
from edge.storage import Database, record_event

MAX_COMMENT_CHARS = 500


@dataclass(frozen=True)
class Feedback:
    feedback_id: str
    service_id: str
    rating: int
    comment: str | None
    submitted_at: datetime


class FeedbackService:
    def __init__(self, db: Database, catalogue: CatalogueService, clock: Clock) -> None:
        self._db = db
        self._catalogue = catalogue
        self._clock = clock

    def submit(self, resident: Resident | None, service_id: str, rating: int,
               comment: str | None = None) -> Feedback:
        # bool is an int in Python; a checkbox's True is not a rating.
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
            raise FeedbackError("bad_rating", "a rating is a whole number from 1 to 5")
        if not isinstance(comment, str | None):
            raise FeedbackError("bad_input", "a comment must be text")
        comment = (comment or "").strip() or None
        if comment is not None and len(comment) > MAX_COMMENT_CHARS:
            raise FeedbackError("comment_too_long",
                                f"please keep the comment under {MAX_COMMENT_CHARS} characters")
        try:
            self._catalogue.service(service_id)
        except CatalogueError:
            raise FeedbackError("unknown_service", "there is no such service to rate") from None
        row = FeedbackRow(id=str(uuid.uuid4()), service_id=service_id, rating=rating,
                          comment=comment, resident_id=resident.resident_id if resident else None,
                          submitted_at=self._clock.now())
        with self._db.write() as s:
            s.add(row)
            record_event(s, "feedback.submitted",
                         {"feedback_id": row.id, "service_id": service_id, "rating": rating,
                          "comment": comment, "resident_id": row.resident_id,
                          "submitted_at": iso_utc(row.submitted_at)}, clock=self._clock)
        return Feedback(row.id, service_id, rating, comment, row.submitted_at)
