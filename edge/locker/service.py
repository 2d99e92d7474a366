"""The parcel locker's rules, as one front for the adapters (kiosk UI, JSON API, cloud bridge,
diagnostics). The rules live in the parts around one shared door state (ADR 0100):

- `Doors` (doors.py): the live door picture, unlocks with their audit, faults, left-open;
- `Deposits` (deposits.py): courier log-in, opening a compartment, the parcel stored;
- `Pickups` and `AttemptBudget` (pickups.py): code, token, resident and return openings;
- `Upkeep` (upkeep.py): start-up reconciliation, retention, abandoned deposits.

Every state change commits together with its outbox event and audit row; the DoorMonitor
(monitor.py) polls the boards and feeds each status read to `Doors.apply_board_status`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from edge.clock import Clock
from edge.drivers.lockboard.base import LockBoardBus
from edge.locker.codes import PickupCodes
from edge.locker.couriers import CourierLogins
from edge.locker.deposits import Deposits, PickupTokens
from edge.locker.doors import Doors, Subscriber, redact_event
from edge.locker.errors import LockerError
from edge.locker.pickups import Pickups
from edge.locker.refusals import Refusals
from edge.locker.sends import Sends
from edge.locker.upkeep import Upkeep
from edge.locker.views import DepositView, PickupView, SendView, Station
from edge.settings import CompartmentSpec, CourierEntry, LockerSettings
from edge.storage import Actor, Database

__all__ = ["LockerService", "PickupTokens", "redact_event"]


class LockerService:
    """The one object adapters call. It holds no rules and no state of its own: each method
    hands the call to the part that owns it, so the adapters keep one stable surface while
    the parts stay small. It has more than 15 public methods for that reason only."""

    def __init__(
        self,
        *,
        db: Database,
        bus: LockBoardBus,
        layout: Iterable[CompartmentSpec],
        clock: Clock,
        box_secret: bytes,
        pickup_tokens: PickupTokens | None,
        alarm: Callable[[bool], None],
        settings: LockerSettings,
        phone_hash: Callable[[str], str],
        resident_phone_hash: Callable[[str], str | None] | None = None,
        seal_secret: Callable[[dict[str, Any], str], str] | None = None,
        station: Station | None = None,
        camera_check: Callable[[], str | None] | None = None,
    ) -> None:
        """`settings` is the live object (config.set changes thresholds in place).
        `phone_hash`: a normalised phone number -> the hash parcels are filed under.
        `resident_phone_hash`: a resident id -> that hash, or None (identified pickups).
        `seal_secret`: (secret, message_id) -> text sealed to the platform; None refuses deposits.
        `station`: the station's name and address for parcel notices.
        `camera_check`: None when the locker's camera gives a picture, else why not; without
        it send-outs are refused."""
        codes = PickupCodes(box_secret)
        self.clock = clock  # diagnostics tell ages by the locker's own clock
        self._doors = Doors(db, bus, layout, clock, alarm, settings)
        self._deposits = Deposits(self._doors, codes, pickup_tokens, phone_hash, seal_secret, station)
        self._pickups = Pickups(self._doors, codes, pickup_tokens, resident_phone_hash)
        self._refusals = Refusals(self._doors)
        self._sends = Sends(self._doors, codes, camera_check)
        self._upkeep = Upkeep(self._doors)
        self._couriers = CourierLogins(self._doors, codes)

    @property
    def doors(self) -> Doors:
        """The shared door state, for the DoorMonitor that feeds it."""
        return self._doors

    # --- doors and reading ------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> None:
        self._doors.subscribe(callback)

    @property
    def boards(self) -> list[int]:
        return self._doors.boards

    def compartment_location(self, number: int) -> CompartmentSpec:
        return self._doors.compartment_location(number)

    def snapshot(self) -> list[dict[str, Any]]:
        return self._doors.snapshot()

    def open_remote(self, compartment: int, operator: str, reason: str) -> dict[str, Any]:
        return self._doors.open_plain(compartment, Actor.REMOTE, operator, reason or "remote")

    def open_by_technician(self, compartment: int, who: str, reason: str = "diagnostics") -> dict[str, Any]:
        return self._doors.open_plain(compartment, Actor.TECHNICIAN, who, reason)

    def clear_fault(self, number: int, who: str) -> None:
        self._doors.clear_fault(number, who)

    def set_maintenance(self, number: int, on: bool, reason: str, actor: Actor, who: str) -> dict[str, Any]:
        return self._doors.set_maintenance(number, on, reason, actor, who)

    # --- deposits ---------------------------------------------------------------------------

    def courier_log_in(self, code: str, kiosk_id: str = "kiosk") -> CourierEntry:
        return self._couriers.log_in(code, kiosk_id)

    def courier_company(self, courier_id: str) -> str:
        return self._couriers.company_of(courier_id)

    def deposit_status(self, deposit_id: str, courier_id: str | None = None) -> DepositView:
        return self._deposits.status(deposit_id, courier_id)

    def check_waybill(self, courier_id: str, waybill: str) -> str:
        return self._deposits.check_waybill(courier_id, waybill)

    def start_deposit(self, courier_id: str, waybill: str, phone: str, size: str) -> DepositView:
        return self._deposits.start(courier_id, waybill, phone, size)

    def cancel_deposit(self, deposit_id: str) -> DepositView:
        return self._deposits.cancel(deposit_id)

    def reopen_deposit(self, deposit_id: str) -> DepositView:
        return self._deposits.reopen(deposit_id)

    def report_door_not_opened(self, deposit_id: str) -> DepositView:
        return self._deposits.report_door_not_opened(deposit_id)

    # --- pickups and returns ----------------------------------------------------------------

    def pickup_status(self, pickup_or_parcel_id: str) -> PickupView:
        return self._pickups.status(pickup_or_parcel_id)

    def pickup_with_code(self, code: str, kiosk_id: str = "kiosk") -> PickupView:
        return self._pickups.with_code(code, kiosk_id)

    def open_next_door(self, pickup_id: str) -> PickupView:
        return self._pickups.open_next(pickup_id)

    def pickup_with_token(self, token: str, kiosk_id: str = "kiosk") -> PickupView:
        return self._pickups.with_token(token, kiosk_id)

    def pickups_for_resident(self, resident_id: str) -> list[PickupView]:
        return self._pickups.for_resident(resident_id)

    def return_parcel(self, courier_id: str, parcel_id: str) -> PickupView:
        return self._pickups.return_parcel(courier_id, parcel_id)

    def refuse_parcel(self, pickup_id: str, reason: str) -> PickupView:
        return self._refusals.refuse(pickup_id, reason)

    def returns_for(self, courier_id: str) -> list[dict[str, Any]]:
        return self._upkeep.returns_for(courier_id)

    def refuse_if_cooling_down(self, kiosk_id: str = "kiosk") -> None:
        self._pickups.budget.refuse_if_cooling_down(kiosk_id)

    def record_failed_identification(self, kiosk_id: str, method: str) -> LockerError:
        return self._pickups.budget.record_failed_identification(kiosk_id, method)

    # --- sending -----------------------------------------------------------------------------

    def start_send(self, company: str, size: str, *, send_code: str | None = None,
                   resident_id: str | None = None) -> SendView:
        return self._sends.start(company, size, send_code=send_code, resident_id=resident_id)

    def send_status(self, send_id: str) -> SendView:
        return self._sends.status(send_id)

    def sends_waiting_for(self, courier_id: str) -> list[SendView]:
        return self._sends.waiting_for(courier_id)

    def collect_send(self, courier_id: str, send_id: str) -> SendView:
        return self._sends.collect(courier_id, send_id)

    # --- upkeep -----------------------------------------------------------------------------

    def overdue_parcels(self, company: str | None = None) -> list[dict[str, Any]]:
        return self._upkeep.overdue_parcels(company)

    def check_retention(self) -> int:
        return self._upkeep.check_retention()

    def expire_abandoned_deposits(self) -> int:
        return self._upkeep.expire_abandoned_deposits()

    def reconcile(self) -> list[dict[str, Any]]:
        return self._upkeep.reconcile()
