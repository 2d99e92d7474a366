"""Tables that every part of the controller shares: the outbox, the audit trail, settings.

Each domain declares its own tables next to its code (edge/locker/models.py, ...) on this
Base; Alembic sees them all through edge.storage.migrate.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; SQLite has no time zones, so naive values are refused."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        from datetime import timezone

        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        from datetime import timezone

        return None if value is None else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: UtcDateTime}


class OutboxEvent(Base):
    """An event for the cloud, written in the same transaction as the change it reports.

    `seq` is the contract's per-device sequence number: AUTOINCREMENT never reuses a value,
    and a rolled-back transaction gives its number back, so committed events have no gaps.
    """

    __tablename__ = "outbox"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime]
    priority: Mapped[int] = mapped_column(Integer, default=5)
    data: Mapped[dict[str, Any]]
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    published_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_outbox_pending", "published_at", "priority", "seq"),
        {"sqlite_autoincrement": True},
    )


class AuditEntry(Base):
    """Who did what, when, with what result: every door opening and every pickup attempt."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(16))  # resident, courier, technician, remote, system
    actor_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(48))
    target: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class KeyValue(Base):
    """Small durable state: settings changed by the cloud, counters, markers."""

    __tablename__ = "kv"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class AuditPurgeWindow(Base):
    """Set only inside the retention purge's own transaction: the audit table's delete
    trigger lets through rows older than `before` while this one row exists (ADR 0135)."""

    __tablename__ = "audit_purge_window"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    before: Mapped[datetime]
