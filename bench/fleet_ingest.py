"""Fleet ingest: simulated stations -> Mosquitto -> `fleet ingest` workers -> PostgreSQL,
beside a raw subscriber (no database) on the same broker in the same run.

    python bench/fleet_ingest.py [--quick] [--stations 1000] [--events 20]

Starts its own Mosquitto (loopback, free port) and a fresh PostgreSQL database on the
server of FLEET_TEST_DATABASE_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test),
dropped at the end. Prints:
- raw subscriber: a separate process on a shared subscription, QoS 1, counting only;
- ingest with 1, 2 and 4 workers (`fleet ingest --workers N`, separate processes): rate
  from the burst's start until every event is committed, as a share of the raw rate alone
  and of the raw subscriber's rate in the same burst (it keeps its own copy; on a busy
  machine the second ratio is the steadier one);
- kill -9 of a worker mid-burst: events stored, distinct message_ids, expected (nothing
  lost, nothing twice);
- the platform away during a burst: drain time once back, then one event's ingest lag;
- a forced gap (seqs withheld by the stations): detected, replayed on `outbox.replay`,
  closed, and how long that took.
Each phase is a new burst: every station publishes `--events` new events, interleaved.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from fleet import db as fleet_db  # noqa: E402
from fleet.settings import load_settings  # noqa: E402
from fleet.simulate import Chaos, burst, connect_fleet, make_stations  # noqa: E402
from tests.support.mosquitto import Broker  # noqa: E402

DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def raw_subscriber(host: str, port: int, counter: "multiprocessing.Value", ready: "multiprocessing.Event") -> None:
    """Counts every event on a shared subscription (QoS 1, paho's automatic ack)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw", protocol=MQTTProtocolVersion.MQTTv5)

    def on_message(*_args: object) -> None:
        with counter.get_lock():
            counter.value += 1

    client.on_message = on_message
    client.on_subscribe = lambda *_a: ready.set()
    client.connect(host, port)
    client.subscribe("$share/raw/edge/v1/+/+/evt/#", qos=1)
    client.loop_forever()


def timed_until(predicate, timeout: float) -> float | None:  # noqa: ANN001
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    return None


class Ingest:
    """`fleet ingest --workers N` as a process tree, like production."""

    def __init__(self, workers: int, env: dict[str, str]) -> None:
        fleet = Path(sys.executable).with_name("fleet")
        self.process = subprocess.Popen([str(fleet), "ingest", "--workers", str(workers)], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.process.stderr), daemon=True).start()
        if timed_until(lambda: sum("ingest_connected" in line for line in self.lines) >= workers, 60) is None:
            raise RuntimeError("ingest workers did not subscribe:\n" + "".join(self.lines[-20:]))

    def worker_pid(self, index: int) -> int:
        return next(int(m.group(1)) for line in self.lines
                    if (m := re.search(rf"worker_started\s+index={index} pid=(\d+)", line)))

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 stations x 5 events")
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20, help="events per station per phase")
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    stations_n, events_n = (200, 5) if args.quick else (args.stations, args.events)
    burst_size = stations_n * events_n

    server = make_url(os.environ.get("FLEET_TEST_DATABASE_URL", DEFAULT_SERVER))
    admin = fleet_db.conninfo(server.render_as_string(hide_password=False))
    name = f"fleet_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.set(database=name).render_as_string(hide_password=False)
    workdir = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    broker = Broker(workdir / "broker").start()
    raw = None
    try:
        fleet_db.upgrade(url)
        settings = load_settings(database_url=url, mqtt={"host": broker.host, "port": broker.port})
        env = {**os.environ, "FLEET_DATABASE_URL": url, "FLEET_MQTT__HOST": broker.host,
               "FLEET_MQTT__PORT": str(broker.port), "FLEET_LOG_LEVEL": "INFO",
               "FLEET_INGEST__GAP_REPLAY_AFTER_S": "2", "FLEET_INGEST__MAINTENANCE_EVERY_S": "1"}
        links = connect_fleet(settings.mqtt, make_stations(stations_n), args.connections, name="bench")
        pg = fleet_db.connect(url)
        pg.autocommit = True

        def stored() -> int:
            return pg.execute("SELECT count(*) FROM event_keys").fetchone()[0]

        print(f"{stations_n} stations over {args.connections} connections, {events_n} events each per "
              f"phase ({burst_size} messages); Mosquitto and PostgreSQL on this machine")

        # Raw subscriber alone: the broker and the publishers' ceiling on this machine.
        counter, ready = multiprocessing.Value("q", 0), multiprocessing.Event()
        raw = multiprocessing.get_context("fork").Process(target=raw_subscriber,
                                                          args=(broker.host, broker.port, counter, ready), daemon=True)
        raw.start()
        ready.wait(10)
        # Stations of their own: no ingest session exists yet, so these never reach the database.
        raw_links = connect_fleet(settings.mqtt, make_stations(stations_n, prefix="raw"), args.connections,
                                  name="bench-raw")
        start = time.monotonic()
        burst(raw_links, events_n)
        timed_until(lambda: counter.value >= burst_size, 600)
        raw_s = time.monotonic() - start
        for link in raw_links:
            link.stop()
        raw_rate = burst_size / raw_s
        print(f"raw subscriber (no database)   {raw_rate:9.0f} msg/s  ({raw_s:.2f} s)")

        # Ingest with 1, 2, 4 workers; the raw subscriber keeps receiving its copy beside them.
        for workers in (1, 2, 4):
            ingest = Ingest(workers, env)
            before, raw_before = stored(), counter.value
            start = time.monotonic()
            burst(links, events_n)
            raw_took = timed_until(lambda: counter.value >= raw_before + burst_size, 600)
            raw_took = None if raw_took is None else time.monotonic() - start
            took = timed_until(lambda: stored() >= before + burst_size, 900)
            took = None if took is None else time.monotonic() - start
            ingest.stop()
            if took is None:
                print(f"ingest, {workers} worker(s): did not finish")
                continue
            rate = burst_size / (took or 1e-9)
            beside = burst_size / raw_took if raw_took else float("nan")
            print(f"ingest, {workers} worker(s)           {rate:9.0f} msg/s  ({took:.2f} s)  "
                  f"{rate / raw_rate:5.2f} x raw alone; raw beside it {beside:.0f} msg/s, "
                  f"{rate / beside:5.2f} x that")

        # kill -9 of a worker mid-burst: nothing lost, nothing twice.
        ingest = Ingest(2, env)
        before = stored()
        sender = threading.Thread(target=burst, args=(links, events_n), daemon=True)
        sender.start()
        timed_until(lambda: stored() >= before + burst_size // 4, 300)
        os.kill(ingest.worker_pid(0), signal.SIGKILL)
        sender.join()
        timed_until(lambda: stored() >= before + burst_size, 600)
        ingest.stop()
        events, distinct = pg.execute("SELECT count(*), count(DISTINCT message_id) FROM events").fetchone()
        expected = 4 * burst_size
        print(f"kill -9 mid-burst: stored {events}, distinct message_ids {distinct}, expected {expected} -> "
              f"{'nothing lost, nothing twice' if events == distinct == expected else 'MISMATCH'}")

        # The platform away while stations publish: its sessions queue the events; once back,
        # the backlog drains and a fresh event's ingest lag is measured.
        before = stored()
        burst(links, events_n)  # no worker running; the 2 sessions of the last phase hold them
        start = time.monotonic()
        ingest = Ingest(2, env)
        timed_until(lambda: stored() >= before + burst_size, 900)
        drained = time.monotonic() - start
        probe = links[0].stations[next(iter(links[0].stations))]
        sent_at = time.monotonic()
        links[0].publish(probe.next_event("door.opened", {"compartment": 1})).wait_for_publish(30)
        timed_until(lambda: pg.execute("SELECT EXISTS (SELECT 1 FROM event_keys WHERE site_id = %s AND "
                                       "device_id = %s AND seq = %s)",
                                       (probe.site_id, probe.device_id, probe.seq)).fetchone()[0], 120)
        lag = time.monotonic() - sent_at
        ingest.stop()
        print(f"platform away during a burst: {burst_size} queued events drained in {drained:.1f} s "
              f"after the workers came back; then a new event stored {lag:.2f} s after it was sent")

        # A forced gap: stations withhold seqs; the workers ask for them; the gap closes.
        ingest = Ingest(2, env)
        first_gap = pg.execute("SELECT coalesce(max(id), 0) FROM gaps").fetchone()[0]
        start = time.monotonic()
        report = burst(links, events_n, chaos=Chaos(missing=0.001), seed=11)
        burst(links, 1)  # a later seq makes a withheld last one visible
        withheld = [(site, device, seq) for (site, device), seqs in report.withheld_by_station.items()
                    for seq in seqs]

        def withheld_stored() -> bool:
            return all(pg.execute("SELECT EXISTS (SELECT 1 FROM event_keys WHERE site_id = %s AND "
                                  "device_id = %s AND seq = %s)", key).fetchone()[0] for key in withheld)

        timed_until(lambda: withheld_stored() and pg.execute(
            "SELECT count(*) FROM gaps WHERE closed_at IS NULL").fetchone()[0] == 0, 300)
        closed = time.monotonic() - start
        ingest.stop()
        opened, replayed = pg.execute("SELECT count(*), coalesce(sum(replay_count), 0) FROM gaps WHERE id > %s",
                                      (first_gap,)).fetchone()
        lagging = pg.execute("SELECT count(*) FROM devices WHERE watermark <> max_seq").fetchone()[0]
        print(f"forced gap: {len(withheld)} seqs withheld; {opened} gaps opened in this phase (reordering "
              f"across workers opens short ones), {replayed} replay requests; every withheld seq stored and "
              f"every gap closed {closed:.1f} s after the burst began "
              f"({'yes' if withheld_stored() else 'NO'}); devices behind their max seq: {lagging}")
        for link in links:
            link.stop()
        pg.close()
    finally:
        if raw is not None:
            raw.kill()
        broker.stop()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
