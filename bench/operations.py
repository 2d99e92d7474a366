"""Costs of running a station: metrics counting on the outbox hot path, a scrape, a backup.

    python bench/operations.py [--quick] [--events N]

Prints:
- record_event, 100 per transaction, with the metrics counting (edge/ops/metrics.py) beside
  the same loop with the counting switched off, in this run: events/s and the ratio;
- one /metrics rendering (scrape-time gauges + counters) with N events waiting: ms;
- an encrypted online backup of that database (scrypt passphrase) and its restore: s, MB.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.app import Controller  # noqa: E402
from edge.clock import SystemClock  # noqa: E402
from edge.ops import metrics  # noqa: E402
from edge.ops.backup import Opening, Sealing, restore_backup, take_backup  # noqa: E402
from edge.settings import load_settings  # noqa: E402
from edge.storage import Database, outbox, record_event  # noqa: E402

SAMPLE = {"compartment": 12, "parcel_id": "p-000123", "size": "M", "phone": "138****5678"}


def write_events(db: Database, count: int) -> float:
    """Events per second, 100 per transaction."""
    started = time.perf_counter()
    for first in range(0, count, 100):
        with db.write() as session:
            for _ in range(min(100, count - first)):
                record_event(session, "door.opened", SAMPLE)
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int, default=None)
    args = parser.parse_args()
    events = args.events or (5_000 if args.quick else 50_000)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        settings = load_settings(data_dir=root / "data", http={"port": 0})
        db = Database(settings.database_path)
        db.upgrade()
        counting = outbox.count_event_after_commit
        rounds = 3
        with_metrics, without = [], []
        for _ in range(rounds):  # interleaved, so machine noise hits both alike
            with_metrics.append(write_events(db, events // (2 * rounds)))
            outbox.count_event_after_commit = lambda *_a, **_k: None
            without.append(write_events(db, events // (2 * rounds)))
            outbox.count_event_after_commit = counting
        best_with, best_without = max(with_metrics), max(without)
        print(f"record_event, 100/txn: with metrics {best_with:,.0f} ev/s, without {best_without:,.0f} ev/s, "
              f"ratio {best_with / best_without:.3f}")

        controller = Controller(settings=settings, db=db, clock=SystemClock())
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            body = metrics.render(controller)
            timings.append((time.perf_counter() - started) * 1000)
        print(f"/metrics with {events:,} events waiting: {min(timings):.1f} ms (best of 5), {len(body):,} bytes")

        size_mb = settings.database_path.stat().st_size / 1e6
        started = time.perf_counter()
        take_backup(settings.data_dir, root / "b.edgebak", Sealing(passphrase=b"bench passphrase"))
        backup_s = time.perf_counter() - started
        started = time.perf_counter()
        restore_backup(root / "b.edgebak", root / "restored", Opening(passphrase=b"bench passphrase"))
        restore_s = time.perf_counter() - started
        print(f"backup of a {size_mb:.1f} MB database: {backup_s:.2f} s -> "
              f"{(root / 'b.edgebak').stat().st_size / 1e6:.1f} MB file; restore {restore_s:.2f} s")
        db.dispose()


if __name__ == "__main__":
    main()
