"""What the locker service hands to adapters (kiosk UI, JSON API, cloud bridge), and one
compartment as the bridge and the UI describe it (`describe_compartment`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from edge.clock import iso_utc
from edge.drivers.lockboard.base import Latch

if TYPE_CHECKING:
    from edge.drivers.lockboard.base import LockState
    from edge.locker.models import Compartment, Deposit, Parcel, Send

# Deposit states: opening (row written, door being unlocked), door_open, empty_closed (door
# closed with no item seen: courier may reopen or cancel), deposited, cancelled, failed.
LIVE_DEPOSIT_STATES = ("opening", "door_open", "empty_closed")
# Parcel states while it is in a compartment: a refused parcel waits there for its courier.
# Send states while the parcel (or its door) holds a compartment.
LIVE_SEND_STATES = ("opening", "door_open", "deposited", "collect_open")
LIVE_PARCEL_STATES = ("stored", "pickup_open", "refusing", "refused", "return_open")


@dataclass(frozen=True)
class DepositView:
    """A deposit as adapters show it: no phone, no code."""

    deposit_id: str
    compartment: int
    size: str
    state: str
    message: str
    parcel_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PickupView:
    """A pickup or return door operation as adapters show it."""

    pickup_id: str
    parcel_id: str
    compartment: int
    purpose: str  # pickup | return
    state: str  # opening | door_open | not_opened | refusing | collected | refused | returned
    message: str = ""
    next_doors: tuple[int, ...] = ()  # one code, every parcel: the resident's doors still to open

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Station:
    """Where parcels wait, as the resident's notice names it (site settings)."""

    name: str
    address: str


@dataclass(frozen=True)
class SendView:
    """A parcel sent from the station, as adapters show it: no send code."""

    send_id: str
    company: str
    compartment: int  # the door to use now
    size: str
    state: str
    message: str = ""
    not_opened: tuple[int, ...] = ()  # doors tried for this send that did not open (ADR 0138)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe_compartment(row: Compartment, state: LockState, parcel: Parcel | None,
                         deposit: Deposit | None, send: Send | None = None) -> dict[str, Any]:
    if not row.enabled:
        use = "disabled"
    elif row.fault:
        use = "fault"
    elif row.maintenance and parcel is None and deposit is None and send is None:
        use = "maintenance"  # with a parcel inside, the parcel's state shows (it stays collectable)
    elif state.latch is Latch.UNKNOWN:
        use = "unknown"
    elif deposit is not None:
        use = "deposit"
    elif send is not None:
        use = "send"  # an outgoing parcel (or its door) holds the compartment
    elif parcel is not None:
        use = {"stored": "occupied", "pickup_open": "pickup", "refusing": "pickup", "refused": "refused",
               "return_open": "return"}[parcel.state]
    else:
        use = "free"
    return {
        "number": row.number, "board": row.board, "lock": row.lock, "size": row.size,
        "latch": state.latch.value, "item": state.item, "state": use, "fault": row.fault,
        "maintenance": row.maintenance,
        "parcel": None if parcel is None else {
            "parcel_id": parcel.id, "phone_masked": parcel.phone_masked,
            "deposited_at": iso_utc(parcel.deposited_at), "overdue": parcel.overdue,
            "state": parcel.state,
        },
        "deposit_id": deposit.id if deposit else None,
        "send": None if send is None else {"send_id": send.id, "company": send.company, "state": send.state},
    }
