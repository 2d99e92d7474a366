"""Outbox -> MQTT throughput, with every durability promise kept, beside raw paho.

    python bench/outbox_throughput.py [--quick] [--events N]

Starts its own Mosquitto (loopback, free port) and prints:
- raw paho: QoS 1 publishes of envelope-sized payloads, window 100, until the last PUBACK;
- writer alone: how fast this process commits events (100 per transaction, synchronous=FULL)
  with no bridge running: the ceiling for any end-to-end rate;
- backlog drain: N events already committed, bridge started, until every row is marked
  published (PUBACK for exactly that message, row updated in SQLite with synchronous=FULL);
- sustained: the same process commits events flat out (100 per transaction) while the
  bridge publishes; rate from first commit to last PUBACK (writer and bridge share the GIL
  and the database's write lock, as in the controller), as a share of raw paho and of what
  the writer committed;
- latency at an offered 200 events/s, one event per commit: commit -> marked published;
- the process's RSS sampled during the drain (it should stay flat: rows are read a window
  at a time, never loaded whole).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion  # noqa: E402

from cloud_bridge import Bridge, CommandRouter  # noqa: E402
from edge.clock import SystemClock  # noqa: E402
from edge.logs import configure_logging  # noqa: E402
from edge.settings import load_settings  # noqa: E402
from edge.storage import Database, OutboxEvent, outbox, record_event  # noqa: E402
from sqlalchemy import select  # noqa: E402
from tests.support.mosquitto import Broker  # noqa: E402

WINDOW = 100
SAMPLE = {"compartment": 12, "parcel_id": "p-000123", "size": "M", "phone": "138****5678"}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.25):
            self.samples.append(rss_mb())

    def stop(self) -> list[float]:
        self._done.set()
        self.join()
        return self.samples


def raw_paho(broker: Broker, count: int, payload: bytes) -> float:
    slots = threading.Semaphore(WINDOW)  # the same in-flight bound the bridge keeps
    acked = [0]
    finished = threading.Event()

    def on_publish(*_args: object) -> None:
        acked[0] += 1
        slots.release()
        if acked[0] == count:
            finished.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw", protocol=MQTTProtocolVersion.MQTTv5)
    client.max_inflight_messages_set(WINDOW)
    client.on_publish = on_publish
    client.connect(broker.host, broker.port)
    client.loop_start()
    start = time.perf_counter()
    for _ in range(count):
        slots.acquire()
        client.publish("bench/raw/evt/parcel.deposited", payload, qos=1)
    finished.wait()
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return count / elapsed


def commit(db: Database, count: int, batch: int = 1000) -> None:
    for first in range(0, count, batch):
        with db.write() as session:
            for _ in range(min(batch, count - first)):
                record_event(session, "parcel.deposited", SAMPLE)


def paced_writer(db: Database, count: int, rate: float) -> int:
    """One event per transaction at `rate` per second, like a busy kiosk; returns the first seq."""
    start = time.perf_counter()
    first_seq = 0
    for n in range(count):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        with db.write() as session:
            seq = record_event(session, "parcel.deposited", SAMPLE).seq
        first_seq = first_seq or seq
    return first_seq


def latencies(db: Database, first_seq: int) -> tuple[float, float]:
    with db.read() as session:
        rows = session.execute(select(OutboxEvent.ts, OutboxEvent.published_at)
                               .where(OutboxEvent.seq >= first_seq)).all()
    spans = sorted((published - ts).total_seconds() for ts, published in rows)
    return spans[len(spans) // 2], spans[int(len(spans) * 0.99)]


def wait_drained(db: Database, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.read() as session:
            if outbox.pending(session)[0] == 0:
                return
        time.sleep(0.02)
    raise TimeoutError("the outbox did not drain")


def bench_platform_key() -> str:
    """A throwaway platform key: a broker setting needs one (sealed pickup secrets)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from edge.identity.sealing import public_key_text

    return public_key_text(X25519PrivateKey.generate().public_key())


def bridge_for(workdir: Path, broker: Broker, db: Database) -> Bridge:
    settings = load_settings(data_dir=workdir, mqtt={"host": broker.host, "port": broker.port,
                                                     "site_id": "bench", "device_id": "edge", "window": WINDOW,
                                                     "platform_public_key": bench_platform_key()},
                             outbox={"max_pending_rows": 10**7, "max_pending_bytes": 2**31,
                                     "published_tail_rows": 10**7})  # keep rows for the latency figures
    return Bridge(settings, db, CommandRouter(db, SystemClock()), clock=SystemClock(), version="bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 events instead of 100,000")
    parser.add_argument("--events", type=int)
    args = parser.parse_args()
    count = args.events or (10_000 if args.quick else 100_000)
    configure_logging("ERROR")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = Broker(workdir / "broker").start()
        try:
            payload = (b'{"message_id":"5b1c2d3e-0000-4000-8000-000000000001","seq":1,"type":"parcel.deposited",'
                       b'"ts":"2026-11-21T08:30:00.123Z","site_id":"bench","device_id":"edge","data":'
                       + outbox.json.dumps(SAMPLE).encode() + b"}")
            raw_rate = raw_paho(broker, count, payload)
            print(f"raw paho QoS 1 (window {WINDOW}):          {raw_rate:10,.0f} msg/s   ({count:,} messages)")

            db = Database(workdir / "edge.sqlite3")
            db.upgrade()
            with db.write() as session:
                outbox.set_budget(session, max_rows=10**7, max_bytes=2**31)
            start = time.perf_counter()
            commit(db, count, 100)
            alone = count / (time.perf_counter() - start)
            print(f"writer alone (100 per transaction):    {alone:10,.0f} events/s committed")
            bridge = bridge_for(workdir, broker, db)
            sampler = RssSampler()
            rss_before = rss_mb()
            sampler.start()
            start = time.perf_counter()
            bridge.start()
            wait_drained(db, timeout=600)
            drain = time.perf_counter() - start
            samples = sampler.stop()
            print(f"bridge backlog drain:                  {count / drain:10,.0f} msg/s   "
                  f"({count:,} events in {drain:.1f} s, {count / drain / raw_rate:.0%} of raw)")
            print(f"RSS during the drain:                  start {rss_before:.0f} MB, "
                  f"min {min(samples, default=rss_before):.0f} MB, max {max(samples, default=rss_before):.0f} MB, "
                  f"end {samples[-1] if samples else rss_before:.0f} MB ({len(samples)} samples)")

            start = time.perf_counter()
            commit(db, count, 100)  # as fast as this process can write, while the bridge publishes
            written = time.perf_counter() - start
            wait_drained(db, timeout=600)
            sustained = time.perf_counter() - start
            end_to_end = count / sustained
            print(f"sustained, writer flat out:            {end_to_end:10,.0f} msg/s   "
                  f"(first commit to last PUBACK, {count:,} events)")
            print(f"  = {end_to_end / raw_rate:.0%} of raw paho; the writer committed {count / written:,.0f} "
                  f"events/s meanwhile ({alone:,.0f}/s alone): published {end_to_end / (count / written):.0%} "
                  f"of the committed rate, {end_to_end / alone:.0%} of the writer-alone rate")

            rate = 200
            paced = min(count, rate * 15)
            first_seq = paced_writer(db, paced, rate)
            wait_drained(db, timeout=600)
            p50, p99 = latencies(db, first_seq)
            print(f"offered {rate:,} events/s (one per commit): commit -> marked published "
                  f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms ({paced:,} events)")
            bridge.stop()
            db.dispose()
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
