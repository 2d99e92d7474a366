"""Service requests (home care, repairs, errands, other) and the emergency button.

An emergency goes to the outbox at Priority.EMERGENCY, so the bridge publishes it before any
backlog, and the resident is told in plain words what happens next.
"""
from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from edge.clock import Clock, iso_utc
from edge.community.errors import RequestError
from edge.community.models import FeedbackRow, RequestRow
from edge.community.residents import Resident
from edge.logs import get_logger
from edge.privacy import InvalidPhone, mask_phone, normalise_phone
from edge.storage import Database, Priority, record_event

log = get_logger(__name__)

# letter: to the community secretary (书记信箱); found_item: "I found something" (失物招领).
CATEGORIES = ("home_care", "repair", "errand", "other", "emergency", "letter", "found_item")
MAX_DESCRIPTION_CHARS = 1000
MAX_ADDRESS_CHARS = 200
# The platform's follow-up of a request (or a piece of feedback): request.update's statuses.
STATUSES = ("received", "in_progress", "done", "closed")
FINISHED = frozenset({"done", "closed"})
OVERDUE_AFTER = timedelta(hours=24)  # not finished a day after it was sent: shown red
MAX_REPLY_CHARS = 2000


@dataclass(frozen=True)
class ServiceRequest:
    request_id: str
    category: str
    priority: str  # "normal" | "emergency"
    phone_masked: str | None
    submitted_at: datetime
    next_steps: dict[str, str]  # {"zh": ..., "en": ...}: what the resident is told now


@dataclass(frozen=True)
class FollowUp:
    """One thing a resident sent (a request or feedback) and what staff did with it."""

    item_id: str
    kind: str  # "request" | "feedback"
    category: str  # a request's category, or "feedback"
    summary: str  # the resident's own words (description or comment), may be empty
    rating: int | None
    status: str  # one of STATUSES
    reply: str | None
    staff: str | None
    submitted_at: datetime
    updated_at: datetime | None

    def stage(self, now: datetime) -> str:
        """What the resident's light shows: done/closed (green), received/in_progress
        (yellow), or overdue (red: not finished OVERDUE_AFTER after it was sent)."""
        if self.status in FINISHED:
            return self.status
        if now - self.submitted_at > OVERDUE_AFTER:
            return "overdue"
        return self.status


Subscriber = Callable[[str, dict[str, Any]], None]


class RequestService:
    def __init__(self, db: Database, clock: Clock, emergency_callback_minutes: int) -> None:
        self._db = db
        self._clock = clock
        self._callback_minutes = emergency_callback_minutes
        self._subscribers: list[Subscriber] = []
        self._subscribers_lock = threading.Lock()

    def subscribe(self, callback: Subscriber) -> None:
        """callback(event_type, data) after a follow-up changed (the kiosk's live pages)."""
        with self._subscribers_lock:
            self._subscribers.append(callback)

    def update(self, item_id: str, status: str, reply: str | None = None,
               staff: str | None = None) -> FollowUp:
        """The platform's word on a request or a piece of feedback (cmd request.update).
        A reply, once given, stays when a later update carries none."""
        if status not in STATUSES:
            raise RequestError("bad_status", f"no request status {status!r}")
        if reply is not None and len(reply) > MAX_REPLY_CHARS:
            raise RequestError("reply_too_long", f"a reply is at most {MAX_REPLY_CHARS} characters")
        with self._db.write() as s:
            row = s.get(RequestRow, item_id) or s.get(FeedbackRow, item_id)
            if row is None:
                raise RequestError("unknown_request", f"no request or feedback {item_id!r} on this box")
            row.status, row.updated_at = status, self._clock.now()
            row.reply = reply if reply is not None else row.reply
            row.staff = staff if staff is not None else row.staff
            followed = _follow_up(row)
        self._notify("request.updated", {"request_id": item_id, "status": status})
        return followed

    def follow_ups_of(self, resident_id: str) -> list[FollowUp]:
        """A resident's requests and feedback, newest first."""
        with self._db.read() as s:
            rows: list[Any] = [*_rows_of(s, RequestRow, resident_id), *_rows_of(s, FeedbackRow, resident_id)]
            return sorted((_follow_up(r) for r in rows), key=lambda f: f.submitted_at, reverse=True)

    def _notify(self, event_type: str, data: dict[str, Any]) -> None:
        with self._subscribers_lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event_type, data)
            except Exception:  # noqa: BLE001 - a page's listener must not undo a stored update
                log.exception("request_subscriber_failed", event_type=event_type)

    def submit(self, resident: Resident | None, category: str, description: str,
               address: str | None, phone: str | None, emergency: bool = False) -> ServiceRequest:
        """A description is required except for the emergency button, where one touch must
        be enough. A phone is required unless the resident identified themselves or it is
        an emergency (staff at the station respond in person)."""
        if not all(isinstance(v, str | None) for v in (description, address, phone)):
            raise RequestError("bad_input", "description, address and phone must be text")
        emergency = emergency or category == "emergency"
        if category not in CATEGORIES:
            raise RequestError("bad_category", f"no request category {category!r}")
        description = (description or "").strip()
        if not description and not emergency:
            raise RequestError("description_required", "please say what you need")
        if len(description) > MAX_DESCRIPTION_CHARS:
            raise RequestError("description_too_long",
                               f"please keep the description under {MAX_DESCRIPTION_CHARS} characters")
        address = (address or "").strip() or None
        if address is not None and len(address) > MAX_ADDRESS_CHARS:
            raise RequestError("address_too_long",
                               f"please keep the address under {MAX_ADDRESS_CHARS} characters")
        full_phone = self._phone(phone, required=resident is None and not emergency)
        priority = "emergency" if emergency else "normal"
        row = RequestRow(id=str(uuid.uuid4()), category=category, priority=priority,
                         description=description, address=address, phone=full_phone,
                         phone_masked=mask_phone(full_phone) if full_phone else None,
                         resident_id=resident.resident_id if resident else None,
                         submitted_at=self._clock.now())
        with self._db.write() as s:
            s.add(row)
            event = {"request_id": row.id, "category": category, "priority": priority,
                     "description": description, "address": address,
                     "phone_masked": row.phone_masked, "resident_id": row.resident_id,
                     "submitted_at": iso_utc(row.submitted_at)}
            if row.phone_masked is None:  # the contract's public-data rule: a phone field is a masked phone
                del event["phone_masked"]
            record_event(s, "request.submitted", event,
                         priority=Priority.EMERGENCY if emergency else Priority.NORMAL,
                         clock=self._clock)
        return ServiceRequest(row.id, category, priority, row.phone_masked, row.submitted_at,
                              self._next_steps(emergency))

    def _phone(self, raw: str | None, *, required: bool) -> str | None:
        if not (raw or "").strip():
            if required:
                raise RequestError("phone_required", "please give a phone number so staff can call you back")
            return None
        try:
            return normalise_phone(raw or "")
        except InvalidPhone as exc:
            raise RequestError("bad_phone", str(exc)) from None

    def _next_steps(self, emergency: bool) -> dict[str, str]:
        if emergency:
            n = self._callback_minutes
            return {"zh": f"已通知工作人员，将在{n}分钟内联系您。如有危险，请立即拨打120。",
                    "en": f"Staff have been alerted and will call you within {n} minutes. "
                          "If you are in danger, call 120 now."}
        return {"zh": "您的需求已提交，工作人员将在一个工作日内与您联系。",
                "en": "Your request has been sent. Staff will contact you within one working day."}


def _rows_of(s: Session, model: Any, resident_id: str) -> list[Any]:
    return list(s.scalars(select(model).where(model.resident_id == resident_id)))


def _follow_up(row: RequestRow | FeedbackRow) -> FollowUp:
    if isinstance(row, FeedbackRow):
        return FollowUp(row.id, "feedback", "feedback", row.comment or "", row.rating,
                        row.status, row.reply, row.staff, row.submitted_at, row.updated_at)
    return FollowUp(row.id, "request", row.category, row.description, None, row.status,
                    row.reply, row.staff, row.submitted_at, row.updated_at)
