"""Fleet ingest: simulated stations -> Mosquitto -> `fleet ingest` workers -> PostgreSQL,
beside a raw subscriber (no database) on the same broker in the same run.

    python bench/fleet_ingest.py [--quick] [--stations 1000] [--events 20]
                                 [--outage-s 600] [--interval-s 10]

Starts its own Mosquitto (loopback, free port) and a fresh PostgreSQL database on the
server of FLEET_TEST_DATABASE_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test),
dropped at the end. The workers run this checkout's code (PYTHONPATH). Prints:
- raw subscriber: a separate process with the workers' MQTT options (MQTT 5, QoS 1, the
  same topics on a shared subscription, persistent session, the same Receive Maximum,
  manual acknowledgement), which acknowledges each message on arrival and stores nothing;
- ingest with 1, 2 and 4 workers (`fleet ingest --workers N`, separate processes): rate
  from the burst's start until every event is committed, as a share of the raw rate alone
  and of the raw subscriber's rate in the same burst (it keeps its own copy; on a busy
  machine the second ratio is the steadier one);
- kill -9 of a worker mid-burst: events stored, distinct message_ids, expected (nothing
  lost, nothing twice);
- the platform away during a burst: drain time once back, then one event's ingest lag;
- a forced gap (seqs withheld by the stations): detected, replayed on `outbox.replay`,
  closed, and how long that took;
- an outage of every station (`--outage-s`, 10 minutes; 2 with --quick), time compressed:
  the backlog such an outage leaves in the stations' outboxes at one event per station
  every `--interval-s` is made with the station times it happened, then every station
  reconnects at once and flushes it while producing at that rate again. Ingest lag at a
  moment is its age (now - station ts) of the oldest event made and not yet stored; the
  figure is when it fell under 5 s for good, measured from the reconnect.
Each burst phase is a new burst: every station publishes `--events` new events, interleaved.
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
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from fleet import db as fleet_db  # noqa: E402
from fleet.settings import load_settings  # noqa: E402
from fleet.simulate import (  # noqa: E402
    Chaos, SteadyStations, burst, connect_fleet, make_stations, outage_backlog, publish_all)
from tests.support.mosquitto import Broker  # noqa: E402

PHASES = ("throughput", "kill", "away", "gap", "outage")
DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def raw_subscriber(host: str, port: int, receive_maximum: int, session_expiry_s: int,
                   counter: "multiprocessing.Value", ready: "multiprocessing.Event") -> None:
    """Counts every event with the workers' client options (fleet.mqtt.new_client, manual
    ack, persistent session, Receive Maximum, the same topics on a shared subscription),
    acknowledging each one as it arrives."""
    from paho.mqtt.subscribeoptions import SubscribeOptions

    from fleet.ingest import SUBSCRIBED_TOPICS
    from fleet.mqtt import connect_properties, new_client
    from fleet.settings import FleetMqttSettings

    client = new_client(FleetMqttSettings(host=host, port=port), "bench-raw", manual_ack=True)

    def on_message(client, _userdata, message) -> None:  # noqa: ANN001
        if "/evt/" in message.topic or "/reply/" in message.topic:  # what lands in event_keys
            with counter.get_lock():
                counter.value += 1
        client.ack(message.mid, message.qos)

    def on_connect(client, _userdata, _flags, _reason, _properties) -> None:  # noqa: ANN001
        client.subscribe([(f"$share/raw/{topic}", SubscribeOptions(qos=1)) for topic in SUBSCRIBED_TOPICS])

    client.on_message = on_message
    client.on_connect = on_connect
    client.on_subscribe = lambda *_a: ready.set()
    client.connect(host, port, clean_start=False, properties=connect_properties(session_expiry_s, receive_maximum))
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


def outage_phase(links: list, env: dict[str, str], pg: psycopg.Connection, counter: "multiprocessing.Value",
                 outage_s: float, interval_s: float, hold_s: float, lag_limit_s: float = 5.0) -> None:
    """Every station offline for `outage_s`, then back at once: the backlog drains while the
    stations go on producing; when does ingest lag fall under `lag_limit_s` for good?"""
    stations = sum(len(link.stations) for link in links)
    ingest = Ingest(2, env)
    phase_start = datetime.now(timezone.utc)  # every event of this phase is stored after this
    backlog = outage_backlog(links, outage_s, interval_s, seed=5)  # station times before the reconnect
    raw_before = counter.value
    reconnect = datetime.now(timezone.utc)
    started = time.monotonic()
    steady = SteadyStations(links, interval_s, start=reconnect, seed=6)  # station times after it
    pending = publish_all(backlog)  # every station flushes its outbox at once ...
    steady.start()  # ... and goes on producing behind it (an event due meanwhile keeps its time)
    handed = time.monotonic() - started

    def count(where: str = "") -> int:
        return pg.execute(f"SELECT count(*) FROM events WHERE received_at >= %s {where}",
                          (phase_start, reconnect)[:1 + where.count("%s")]).fetchone()[0]

    raw_took = timed_until(lambda: counter.value >= raw_before + len(backlog), 900)
    raw_took = None if raw_took is None else time.monotonic() - started
    drained = timed_until(lambda: count("AND ts < %s") >= len(backlog), 1800)
    drained = None if drained is None else time.monotonic() - started
    if drained is not None:
        time.sleep(hold_s)  # the stations go on at their rate: the lag must stay low, not dip once
    steady.stop()
    for info in pending:
        info.wait_for_publish(60)
    made = len(backlog) + steady.made
    everything = timed_until(lambda: count() >= made, 600)
    ingest.stop()
    if drained is None or everything is None:
        print(f"outage of {outage_s:.0f} s: the backlog of {len(backlog)} events did not drain")
        return
    # An event stored more than lag_limit_s after its station time kept the lag above the
    # limit until it was stored; once the last such event is stored, the lag stays under it.
    late_until, late, stored, distinct = pg.execute(
        "SELECT max(received_at) FILTER (WHERE received_at - ts >= make_interval(secs => %(limit)s)), "
        "count(*) FILTER (WHERE received_at - ts >= make_interval(secs => %(limit)s)), count(*), "
        "count(DISTINCT message_id) FROM events WHERE received_at >= %(start)s",
        {"limit": lag_limit_s, "start": phase_start}).fetchone()
    recovered = (late_until - reconnect).total_seconds() if late_until else 0.0
    after, median, worst = pg.execute(
        "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - ts)), "
        "max(extract(epoch FROM received_at - ts)) FROM events WHERE received_at > %s",
        (late_until or reconnect,)).fetchone()
    print(f"outage of {outage_s:.0f} s, {stations} stations at one event per {interval_s:g} s each "
          f"({stations / interval_s:.0f} msg/s live): backlog {len(backlog)} events, handed to the connections in "
          f"{handed:.1f} s; raw subscriber received as many {raw_took or float('nan'):.1f} s after the reconnect; "
          f"ingest (2 workers) stored the backlog {drained:.1f} s after it ({len(backlog) / drained:.0f} msg/s), "
          f"beside {steady.made} new events made during and after")
    print(f"  ingest lag under {lag_limit_s:g} s for good {recovered:.1f} s after the reconnect ({late} events, the "
          f"backlog's included, were stored {lag_limit_s:g} s or more after they happened); after "
          f"that {after} events over {hold_s:.0f} s and more, lag median {median or 0:.2f} s, max {worst or 0:.2f} s; "
          f"stored {stored}, distinct {distinct}, made {made} -> "
          f"{'nothing lost, nothing twice' if stored == distinct == made else 'MISMATCH'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 stations x 5 events")
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20, help="events per station per phase")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--outage-s", type=float, default=600,
                        help="length of the stations' outage (120 with --quick)")
    parser.add_argument("--interval-s", type=float, default=10,
                        help="seconds between a station's events in the outage phase")
    parser.add_argument("--hold-s", type=float, default=30,
                        help="how long the outage phase goes on once the backlog is in (10 with --quick)")
    parser.add_argument("--batch-size", type=int,
                        help="FLEET_INGEST__BATCH_SIZE for this run (default: the setting's)")
    parser.add_argument("--receive-maximum", type=int,
                        help="FLEET_INGEST__RECEIVE_MAXIMUM for this run, the raw subscriber's too")
    parser.add_argument("--phases", default=",".join(PHASES),
                        help=f"which phases after the raw subscriber alone, of {','.join(PHASES)}")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    if phases - set(PHASES):
        parser.error(f"unknown phases: {', '.join(sorted(phases - set(PHASES)))}")
    stations_n, events_n = (200, 5) if args.quick else (args.stations, args.events)
    outage_s, hold_s = (min(args.outage_s, 120), min(args.hold_s, 10)) if args.quick else (args.outage_s, args.hold_s)
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
        tuning = {key: value for key, value in (("batch_size", args.batch_size),
                                                 ("receive_maximum", args.receive_maximum)) if value}
        settings = load_settings(database_url=url, mqtt={"host": broker.host, "port": broker.port},
                                 **({"ingest": tuning} if tuning else {}))
        # The ingest settings' defaults (gap replay after 30 s) but for the forced-gap phase,
        # which asks after 2 s so as not to wait; FLEET_INGEST__* from the environment apply.
        env = {**os.environ, "FLEET_DATABASE_URL": url, "FLEET_MQTT__HOST": broker.host,
               "FLEET_MQTT__PORT": str(broker.port), "FLEET_LOG_LEVEL": "INFO",
               "FLEET_INGEST__MAINTENANCE_EVERY_S": "1",
               **{f"FLEET_INGEST__{key.upper()}": str(value) for key, value in tuning.items()},
               # the workers run this checkout's fleet, not whatever an editable install points at
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        links = connect_fleet(settings.mqtt, make_stations(stations_n), args.connections, name="bench")
        pg = fleet_db.connect(url)
        pg.autocommit = True

        def stored() -> int:
            return pg.execute("SELECT count(*) FROM event_keys").fetchone()[0]

        print(f"{stations_n} stations over {args.connections} connections, {events_n} events each per "
              f"phase ({burst_size} messages); Mosquitto and PostgreSQL on this machine; ingest batch "
              f"{settings.ingest.batch_size} (or {settings.ingest.batch_wait_s:g} s), Receive Maximum "
              f"{settings.ingest.receive_maximum}")

        # Raw subscriber alone: the broker and the publishers' ceiling on this machine.
        counter, ready = multiprocessing.Value("q", 0), multiprocessing.Event()
        raw = multiprocessing.get_context("fork").Process(
            target=raw_subscriber, daemon=True,
            args=(broker.host, broker.port, settings.ingest.receive_maximum, settings.mqtt.session_expiry_s,
                  counter, ready))
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
        print(f"raw subscriber (no database)   {raw_rate:9.0f} msg/s  ({raw_s:.2f} s)  [the workers' MQTT options: "
              f"QoS 1, shared subscription, persistent session, Receive Maximum {settings.ingest.receive_maximum}, "
              f"manual ack; it acks on arrival and stores nothing]")

        if "throughput" in phases:
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

        if "kill" in phases:
            # kill -9 of a worker mid-burst: nothing lost, nothing twice.
            ingest = Ingest(2, env)
            before = stored()
            events_before = pg.execute("SELECT count(*) FROM events").fetchone()[0]
            sender = threading.Thread(target=burst, args=(links, events_n), daemon=True)
            sender.start()
            timed_until(lambda: stored() >= before + burst_size // 4, 300)
            at_kill = stored() - before
            os.kill(ingest.worker_pid(0), signal.SIGKILL)
            sender.join()
            timed_until(lambda: stored() >= before + burst_size, 600)
            restarted = timed_until(lambda: any("worker_died" in line for line in ingest.lines), 30) is not None
            ingest.stop()
            events, distinct = pg.execute("SELECT count(*), count(DISTINCT message_id) FROM events").fetchone()
            expected = events_before + burst_size
            print(f"kill -9 mid-burst ({at_kill} of {burst_size} stored at the kill; supervisor restarted it: "
                  f"{'yes' if restarted else 'NO'}): stored {events}, distinct message_ids {distinct}, expected "
                  f"{expected} -> {'nothing lost, nothing twice' if events == distinct == expected else 'MISMATCH'}")

        if "away" in phases:
            # The platform away while stations publish: its sessions queue the events; once back,
            # the backlog drains and a fresh event's ingest lag is measured.
            before = stored()
            burst(links, events_n)  # no worker running; the 2 sessions of the last phase hold them
            start = time.monotonic()
            ingest = Ingest(2, env)
            up = time.monotonic() - start  # `fleet ingest` start: retiring sessions, spawning, imports
            at_up = stored() - before
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
                  f"after `fleet ingest` started ({up:.1f} s until both workers had subscribed, {at_up} stored by "
                  f"then; {(burst_size - at_up) / max(drained - up, 1e-9):.0f} msg/s after); then a new event stored "
                  f"{lag:.2f} s after it was sent")

        if "gap" in phases:
            # A forced gap: stations withhold seqs; the workers ask for them; the gap closes.
            ingest = Ingest(2, {**env, "FLEET_INGEST__GAP_REPLAY_AFTER_S": "2"})
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
        if "outage" in phases:
            outage_phase(links, env, pg, counter, outage_s, args.interval_s, hold_s)
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
