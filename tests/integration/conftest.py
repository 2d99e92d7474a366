"""Identity end to end: the real controller wiring in simulate mode (simulated QR and iris
cameras) with the lock-board simulator on a PTY owned by the test, and no cloud broker
(tests/support/station.py)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.station import Station, running_station


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    with running_station(tmp_path / "data", simulate=True, offline_broker=True) as running:
        yield running
