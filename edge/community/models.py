"""Community tables. Catalogue rows are the platform's copy (replaced whole on every sync);
bookings, sign-ups, requests and feedback are the kiosk's own records and survive a sync,
so they name venues, activities and services by id without foreign keys."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from edge.storage.models import Base

ACTIVE_BOOKING_STATES = ("pending", "approved")


class CatalogueMetaRow(Base):
    """One row: which catalogue version the box holds, and the station's own details."""

    __tablename__ = "catalogue_meta"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    station: Mapped[dict[str, Any]]
    replaced_at: Mapped[datetime]


class ServiceRow(Base):
    __tablename__ = "catalogue_services"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    category: Mapped[str] = mapped_column(String(16), index=True)
    position: Mapped[int] = mapped_column(Integer)  # the platform's order
    doc: Mapped[dict[str, Any]]


class VenueRow(Base):
    __tablename__ = "catalogue_venues"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    doc: Mapped[dict[str, Any]]


class ActivityRow(Base):
    __tablename__ = "catalogue_activities"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime]
    doc: Mapped[dict[str, Any]]


class NoticeRow(Base):
    __tablename__ = "catalogue_notices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    published_at: Mapped[datetime]
    doc: Mapped[dict[str, Any]]


class ResidentRow(Base):
    """A resident the platform synced: enough to recognise a typed phone number, no more."""

    __tablename__ = "residents"

    resident_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_masked: Mapped[str] = mapped_column(String(64))
    phone_masked: Mapped[str] = mapped_column(String(16))
    phone_hash: Mapped[str] = mapped_column(String(64), unique=True)


class BookingRow(Base):
    __tablename__ = "bookings"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    venue_id: Mapped[str] = mapped_column(String(64))
    resident_id: Mapped[str] = mapped_column(String(64), index=True)
    resident_name_masked: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16))  # pending, approved, rejected, cancelled
    reason: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("state IN ('pending','approved','rejected','cancelled')",
                        name="ck_bookings_state"),
        # The last word against double booking: two live bookings can never share a slot,
        # whatever a caller checked before writing.
        Index("uq_bookings_live_slot", "venue_id", "starts_at", unique=True,
              sqlite_where=text("state IN ('pending','approved')")),
        Index("ix_bookings_venue_time", "venue_id", "starts_at"),
    )


class SignupRow(Base):
    __tablename__ = "activity_signups"

    activity_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    resident_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    signed_up_at: Mapped[datetime]
    signed_in_at: Mapped[datetime | None]
    signin_method: Mapped[str | None] = mapped_column(String(8))


class RequestRow(Base):
    __tablename__ = "service_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    category: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(16))  # normal, emergency
    description: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    # Full number kept on the box only, so station staff can call back (ADR 0053).
    phone: Mapped[str | None] = mapped_column(String(16))
    phone_masked: Mapped[str | None] = mapped_column(String(16))
    resident_id: Mapped[str | None] = mapped_column(String(64), index=True)
    submitted_at: Mapped[datetime] = mapped_column(index=True)
    # Follow-up from the platform (request.update): received, in_progress, done, closed.
    status: Mapped[str] = mapped_column(String(16), default="received", server_default="received")
    reply: Mapped[str | None] = mapped_column(Text)
    staff: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime | None]


class FeedbackRow(Base):
    __tablename__ = "feedback"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    service_id: Mapped[str | None] = mapped_column(String(64))  # a catalogue service, or
    # something the resident did here and finished: booking, activity or request (by its id)
    subject_kind: Mapped[str | None] = mapped_column(String(16))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    resident_id: Mapped[str | None] = mapped_column(String(64), index=True)
    submitted_at: Mapped[datetime]
    # Staff answer feedback as they answer requests (request.update, by feedback_id).
    status: Mapped[str] = mapped_column(String(16), default="received", server_default="received")
    reply: Mapped[str | None] = mapped_column(Text)
    staff: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime | None]

    __table_args__ = (CheckConstraint("rating BETWEEN 1 AND 5", name="ck_feedback_rating"),)
