"""The bridge's own tables: commands already run (dedupe by transaction_id) and where each
command reply goes (the MQTT 5 Response Topic and Correlation Data of its command)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from edge.storage.models import Base


class ProcessedCommand(Base):
    """A command seen once. `state` is "running" while a handler that owns its own
    transaction works, then "done"; a "running" row found later means the edge stopped
    mid-command, and the command is not run again (ADR 0034)."""

    __tablename__ = "bridge_processed_command"

    transaction_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    command: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"ok", "result"|"error"}
    received_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]


class ReplyRoute(Base):
    """Where the reply held in outbox row `seq` is published, when not on .../reply."""

    __tablename__ = "bridge_reply_route"

    seq: Mapped[int] = mapped_column(Integer, ForeignKey("outbox.seq", ondelete="CASCADE"),
                                     primary_key=True)
    topic: Mapped[str | None] = mapped_column(String(256))
    correlation_data: Mapped[bytes | None] = mapped_column(LargeBinary)
