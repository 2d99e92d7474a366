"""Trust tests (issue 9) run the real controller wiring against the lock-board simulator,
with the locker tests' fixtures."""
from tests.locker.conftest import (  # noqa: F401 - fixtures
    client,
    controller,
    courier,
    fake_clock,
    locker_overrides,
    sim,
    station_overrides,
    station,
)
