"""Which synthetic person stands at the simulated iris camera for a resident id.

Simulate mode and tests map each resident to a stable `SyntheticIris` person, so the same
resident shows the same eye at enrolment and at pickup."""
from __future__ import annotations

import hashlib


def synthetic_person(resident_id: str) -> int:
    return int.from_bytes(hashlib.sha256(resident_id.encode()).digest()[:4], "big")
