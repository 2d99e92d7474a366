"""Community services on a real SQLite file: how long the kiosk waits for a day view, a
booking request, a sign-in and an emergency request, and a catalogue sync of a big station.

    PYTHONPATH=. .venv/bin/python bench/community.py [--quick]   (from the repository root)
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.clock import FakeClock
from edge.community import (ActivityService, BookingService, CatalogueService, RequestService,
                            Resident, phone_hash)
from edge.storage import Database

TZ = ZoneInfo("Asia/Shanghai")


def catalogue_payload(venues: int, activities: int, residents: int, now: datetime) -> dict:
    hours = [{"weekday": d, "open": "08:00", "close": "21:00"} for d in range(7)]
    name = {"zh": "名称", "en": "name"}
    return {
        "version": "bench", "station": {"name": name},
        "services": [{"id": f"s{i}", "category": "public", "name": name} for i in range(40)],
        "venues": [{"id": f"v{i}", "name": name, "capacity": 20, "opening_hours": hours,
                    "slot_minutes": 30} for i in range(venues)],
        "activities": [{"id": f"a{i}", "title": name, "capacity": 10_000,
                        "starts_at": (now + timedelta(minutes=10)).isoformat(),
                        "ends_at": (now + timedelta(hours=2)).isoformat()} for i in range(activities)],
        "notices": [],
        "residents": [{"resident_id": f"r{i}", "name_masked": "张*", "phone_masked": "138****0000",
                       "phone_hash": phone_hash("bench", f"138{i:08d}")} for i in range(residents)],
    }


def timed(label: str, runs: int, action: Callable[[int], object]) -> None:
    samples = []
    for i in range(runs):
        started = time.perf_counter()
        action(i)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    print(f"{label:<36} runs={runs:<5} median={statistics.median(samples):7.2f} ms  p95={p95:7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run with few repetitions")
    args = parser.parse_args()
    runs = 20 if args.quick else 200
    residents = 1_000 if args.quick else 20_000
    with tempfile.TemporaryDirectory() as folder:
        db = Database(Path(folder) / "bench.sqlite3")
        db.upgrade()
        clock = FakeClock(datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc))
        catalogue = CatalogueService(db, clock, TZ)
        payload = catalogue_payload(8, 50, residents, clock.now())
        timed(f"catalogue replace ({residents} residents)", 3, lambda _i: catalogue.replace(payload))
        bookings = BookingService(db, catalogue, clock)
        activities = ActivityService(db, catalogue, clock)
        requests = RequestService(db, clock, 10)
        day = date(2026, 11, 24)
        slots = [s.start for s in bookings.day_slots("v0", day)]
        timed("day view (26 slots)", runs, lambda _i: bookings.day_slots("v0", day, "r1"))
        timed("booking request", min(runs, len(slots) * 8),
              lambda i: bookings.request(Resident(f"r{i}", "张*", ""), f"v{i // len(slots)}",
                                         slots[i % len(slots)]))
        clock.advance(minutes=5)
        timed("activity sign-in", runs,
              lambda i: activities.sign_in(Resident(f"r{i}", "张*", "", "phone"), "a0"))
        timed("emergency request", runs,
              lambda _i: requests.submit(None, "emergency", "", None, "13800138000"))
        db.dispose()


if __name__ == "__main__":
    main()
