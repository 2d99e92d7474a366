"""Simulate mode's "demo hand": with no hardware, a person can still try every flow.

A door opened for a deposit gets an item put in (and the simulator pushes it shut a few
seconds later); a door opened for a pickup or a return is emptied. It listens to the
locker's events like any subscriber, and lives with the simulators so that the locker's
rules never import a simulator.
"""
from __future__ import annotations

from typing import Any, Protocol

from edge.settings import CompartmentSpec
from simulators.lockboard import LockBoardSimulator

FILLS = {"deposit", "deposit_reopen"}
EMPTIES = {"pickup", "return"}


class CompartmentLocations(Protocol):
    """edge.locker.service.LockerService, as far as the demo hand uses it."""

    def compartment_location(self, number: int) -> CompartmentSpec: ...


class DemoHand:
    """A locker subscriber that puts an item in or takes it out of the simulated compartment."""

    def __init__(self, simulator: LockBoardSimulator, locations: CompartmentLocations) -> None:
        self._simulator = simulator
        self._locations = locations

    def __call__(self, event_type: str, data: dict[str, Any]) -> None:
        if event_type != "door.opened" or data.get("reason") not in FILLS | EMPTIES:
            return
        spec = self._locations.compartment_location(data["compartment"])
        self._simulator.set_item(spec.board, spec.lock, data["reason"] in FILLS)
