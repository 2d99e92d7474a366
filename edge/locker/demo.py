"""Simulate mode's "demo hand": with no hardware, a person can still try every flow.

A door opened for a deposit gets an item put in (and the simulator pushes it shut a few
seconds later); a door opened for a pickup or a return is emptied.
"""
from __future__ import annotations

from typing import Any

from edge.locker.service import LockerService
from simulators.lockboard import LockBoardSimulator

FILLS = {"deposit", "deposit_reopen"}
EMPTIES = {"pickup", "return"}


class DemoHand:
    def __init__(self, simulator: LockBoardSimulator, service: LockerService) -> None:
        self._simulator = simulator
        self._service = service

    def __call__(self, event_type: str, data: dict[str, Any]) -> None:
        if event_type != "door.opened" or data.get("reason") not in FILLS | EMPTIES:
            return
        spec = self._service.compartment_location(data["compartment"])
        self._simulator.set_item(spec.board, spec.lock, data["reason"] in FILLS)
