"""Locker tables: compartments (fault flag, last seen latch), deposits, parcels, door
operations, pickup-code attempts and used pickup tokens.

No pickup code is stored: only its HMAC. No phone number is stored in clear: only the
masked form (for screens) and the site-salted hash the platform uses to name residents.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from edge.storage.models import Base


class Compartment(Base):
    """One compartment as the database last saw it: place on the bus, size, latch, fault."""

    __tablename__ = "locker_compartment"

    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    board: Mapped[int] = mapped_column(Integer)
    lock: Mapped[int] = mapped_column(Integer)
    size: Mapped[str] = mapped_column(String(1))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Last latch state read from the board ("open"/"closed"); survives restarts so that
    # reconcile can tell what changed while the controller was down.
    latch: Mapped[str] = mapped_column(String(8), default="closed")
    item: Mapped[bool | None] = mapped_column(Boolean)
    opened_at: Mapped[datetime | None]
    left_open_alerted: Mapped[bool] = mapped_column(Boolean, default=False)
    fault: Mapped[str | None] = mapped_column(String(200))  # out of service when set
    fault_at: Mapped[datetime | None]
    # Out of service for maintenance (a technician's or the operations centre's reason): never
    # assigned to a deposit; a parcel already inside stays collectable.
    maintenance: Mapped[str | None] = mapped_column(String(200))
    maintenance_at: Mapped[datetime | None]
    maintenance_by: Mapped[str | None] = mapped_column(String(64))


class Deposit(Base):
    """A courier's deposit, from the door opening to the door closing on an item."""

    __tablename__ = "locker_deposit"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    courier_id: Mapped[str] = mapped_column(String(64))
    waybill: Mapped[str] = mapped_column(String(64))
    phone_masked: Mapped[str] = mapped_column(String(16))
    phone_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[str] = mapped_column(String(1))
    compartment: Mapped[int] = mapped_column(Integer)
    # opening | door_open | empty_closed | deposited | cancelled | failed
    state: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(String(200), default="")
    parcel_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (Index("ix_locker_deposit_state", "state"),)


class Parcel(Base):
    """A parcel stored by a deposit, until collected or returned; its code only as a keyed hash."""

    __tablename__ = "locker_parcel"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    deposit_id: Mapped[str] = mapped_column(ForeignKey("locker_deposit.id"))
    compartment: Mapped[int] = mapped_column(Integer)
    size: Mapped[str] = mapped_column(String(1))
    waybill: Mapped[str] = mapped_column(String(64))
    courier_id: Mapped[str] = mapped_column(String(64))
    phone_masked: Mapped[str] = mapped_column(String(16))
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), index=True)  # HMAC-SHA256(box secret, code)
    # stored | pickup_open | refusing | refused | return_open | collected | returned
    state: Mapped[str] = mapped_column(String(16))
    refusal_reason: Mapped[str | None] = mapped_column(String(16))  # damaged | wrong | short
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    deposited_at: Mapped[datetime]
    due_at: Mapped[datetime]  # deposited_at + retention
    closed_at: Mapped[datetime | None]  # collected or returned

    __table_args__ = (Index("ix_locker_parcel_state", "state"),)


class DoorOperation(Base):
    """A door opened to take a parcel out: a resident's pickup or a courier's return."""

    __tablename__ = "locker_door_op"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    parcel_id: Mapped[str] = mapped_column(ForeignKey("locker_parcel.id"), index=True)
    compartment: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(8))  # pickup | return
    method: Mapped[str] = mapped_column(String(16))  # code | token | resident | courier
    actor_id: Mapped[str | None] = mapped_column(String(64))
    # opening (claimed, being unlocked; ADR 0137) | door_open | not_opened | refusing | collected
    # | refused | returned
    state: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_locker_door_op_state", "state"),)


class CodeAttempt(Base):
    """One pickup-code attempt at one kiosk; never the code itself."""

    __tablename__ = "locker_code_attempt"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kiosk_id: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime]
    ok: Mapped[bool] = mapped_column(Boolean)
    cooldown_until: Mapped[datetime | None]  # set on the attempt that started a cooldown

    __table_args__ = (Index("ix_locker_code_attempt_kiosk_ts", "kiosk_id", "ts"),)


class UsedPickupToken(Base):
    """A pickup QR token that has opened its door, so it never opens one again."""

    __tablename__ = "locker_used_token"

    token_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    parcel_id: Mapped[str] = mapped_column(String(32))
    used_at: Mapped[datetime]


class Send(Base):
    """A parcel a resident sends from the station (寄件), from its door opening to the courier
    of the chosen company taking it out. The send code is kept only as a keyed hash."""

    __tablename__ = "locker_send"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    company: Mapped[str] = mapped_column(String(64))  # the courier company that collects it
    size: Mapped[str] = mapped_column(String(1))
    compartment: Mapped[int] = mapped_column(Integer)
    sender: Mapped[str] = mapped_column(String(64))  # "resident:<id>" or "code"
    send_code_hash: Mapped[str | None] = mapped_column(String(64))
    # opening | door_open | deposited | collect_open | collected | cancelled | failed
    state: Mapped[str] = mapped_column(String(16))
    collector_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    deposited_at: Mapped[datetime | None]
    collected_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_locker_send_state", "state"),)
