"""Iris tables: encrypted templates and the consent record (ADR 0044).

A template row holds only AES-GCM ciphertext (TemplateCipher); the key lives in a file
outside the database. Consent rows outlive the template: revocation sets `revoked_at`
and deletes the template row in the same transaction.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from edge.storage.models import Base


class IrisTemplateRow(Base):
    __tablename__ = "iris_templates"

    resident_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class IrisConsentRow(Base):
    __tablename__ = "iris_consents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resident_id: Mapped[str] = mapped_column(String(64), index=True)
    consented_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # How consent was given, e.g. "kiosk:<device>:button:I agree" (ADR 0044).
    recorded_how: Mapped[str] = mapped_column(String(128))


class OneTimeCodeRow(Base):
    """A one-time identity code sent by SMS (ADR 0115): only its keyed hash, never the code.

    One live row per resident: asking again replaces it, and a right code, its expiry or a
    cooldown ends it (`used_at`)."""

    __tablename__ = "identity_otp"

    resident_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
