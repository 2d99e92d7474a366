"""What the locker service hands to adapters (kiosk UI, JSON API, cloud bridge)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

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
    state: str  # door_open | refusing | collected | refused | returned
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
    compartment: int
    size: str
    state: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
