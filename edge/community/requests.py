"""Service requests (home care, repairs, errands, other) and the emergency button.

An emergency goes to the outbox at Priority.EMERGENCY, so the bridge publishes it before any
backlog, and the resident is told in plain words what happens next.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from edge.clock import Clock, iso_utc
from edge.community.errors import RequestError
from edge.community.models import RequestRow
from edge.community.residents import Resident
from edge.privacy import InvalidPhone, mask_phone, normalise_phone
from edge.storage import Database, Priority, record_event

CATEGORIES = ("home_care", "repair", "errand", "other", "emergency")
MAX_DESCRIPTION_CHARS = 1000
MAX_ADDRESS_CHARS = 200


@dataclass(frozen=True)
class ServiceRequest:
    request_id: str
    category: str
    priority: str  # "normal" | "emergency"
    phone_masked: str | None
    submitted_at: datetime
    next_steps: dict[str, str]  # {"zh": ..., "en": ...}: what the resident is told now


class RequestService:
    def __init__(self, db: Database, clock: Clock, emergency_callback_minutes: int) -> None:
        self._db = db
        self._clock = clock
        self._callback_minutes = emergency_callback_minutes

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
            record_event(s, "request.submitted",
                         {"request_id": row.id, "category": category, "priority": priority,
                          "description": description, "address": address,
                          "phone_masked": row.phone_masked, "resident_id": row.resident_id,
                          "submitted_at": iso_utc(row.submitted_at)},
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
