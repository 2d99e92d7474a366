"""Outbox delivery over a real Mosquitto: order, no gap, no loss across broker restarts,
outages and a SIGKILLed edge; the backlog drains while new events flow; emergencies first."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from edge.storage import Database, OutboxEvent, Priority, outbox
from tests.support.bridge import add_events, assert_delivered_exactly, device_log, edge_settings, pending_rows

pytestmark = pytest.mark.mqtt


@pytest.mark.timeout(60)
def test_events_arrive_in_seq_order_without_gaps_across_broker_restarts(broker, cloud, make_bridge, edge_db):
    make_bridge()
    written: list[int] = []
    for _round in range(3):
        written += add_events(edge_db, 300)
        assert cloud.wait_for(lambda: len(device_log(cloud).events) >= len(written) // 2, 20)
        broker.restart()  # PUBACKs in flight are lost; unacknowledged rows are sent again
    written += add_events(edge_db, 100)
    assert cloud.wait_for(lambda: set(written) <= set(device_log(cloud).events), 30)
    arrivals = device_log(cloud).arrivals
    assert arrivals == sorted(arrivals), "first arrivals out of seq order"
    assert_delivered_exactly(edge_db, cloud)
    assert cloud.wait_for(lambda: pending_rows(edge_db) == 0, 30)


@pytest.mark.timeout(60)
def test_broker_down_for_a_while_then_back(broker, cloud, make_bridge, edge_db):
    bridge = make_bridge()
    assert bridge.connected.wait(10)
    broker.stop()
    written = add_events(edge_db, 200)
    # Several reconnection attempts fail while the broker is away; the rows wait in SQLite.
    failures = bridge.connect_failures
    deadline = time.monotonic() + 20
    while bridge.connect_failures < failures + 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bridge.connect_failures >= failures + 3
    assert pending_rows(edge_db) == 200
    broker.start()
    assert cloud.wait_for(lambda: set(written) <= set(device_log(cloud).events), 30)
    assert_delivered_exactly(edge_db, cloud)


@pytest.mark.timeout(90)
def test_ten_thousand_events_queued_in_an_outage_drain_while_new_events_flow(broker, cloud, make_bridge, edge_db):
    bridge = make_bridge()
    assert bridge.connected.wait(10)
    broker.stop()
    backlog = []
    for _batch in range(10):
        backlog += add_events(edge_db, 1000)
    broker.start()
    fresh: list[int] = []
    for _ in range(50):  # new events keep coming while the backlog drains
        fresh.extend(add_events(edge_db, 4))
        time.sleep(0.01)
    assert cloud.wait_for(lambda: set(backlog + fresh) <= set(device_log(cloud).events), 60)
    assert_delivered_exactly(edge_db, cloud)
    assert device_log(cloud).arrivals == sorted(device_log(cloud).arrivals)


@pytest.mark.timeout(60)
def test_a_failing_snapshot_source_does_not_stop_delivery(broker, cloud, make_bridge, edge_db):
    calls = []

    def flaky_snapshot() -> list[dict]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the locker service failed")
        return [{"number": 1, "state": "free"}]

    make_bridge(compartments=flaky_snapshot)
    written = add_events(edge_db, 20)
    assert cloud.wait_for(lambda: set(written) <= set(device_log(cloud).events), 20)
    assert cloud.wait_for(lambda: device_log(cloud).compartments is not None, 30)  # tried again
    assert len(calls) >= 2


@pytest.mark.timeout(60)
def test_an_emergency_overtakes_a_backlog(broker, cloud, make_bridge, edge_db):
    backlog = add_events(edge_db, 3000)
    with edge_db.write() as session:
        emergency = outbox.record_event(session, "request.submitted",
                                        {"request_id": "r-1", "category": "emergency", "priority": "emergency"},
                                        priority=Priority.EMERGENCY).seq
    make_bridge()
    assert cloud.wait_for(lambda: set(backlog) | {emergency} <= set(device_log(cloud).events), 30)
    arrivals = device_log(cloud).arrivals
    assert arrivals.index(emergency) < arrivals.index(backlog[100]), "the emergency waited behind the backlog"
    assert_delivered_exactly(edge_db, cloud)


EDGE_PROCESS = """
import sys, time
from pathlib import Path
from types import SimpleNamespace
from cloud_bridge import Bridge, CommandRouter
from edge.clock import SystemClock
from edge.logs import configure_logging
from edge.storage import Database
from tests.support.bridge import add_events, edge_settings

configure_logging("WARNING")  # log lines to stderr: stdout carries only the progress lines

data_dir, port, events = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
settings = edge_settings(data_dir, SimpleNamespace(host="127.0.0.1", port=port))
db = Database(settings.database_path); db.upgrade()
bridge = Bridge(settings, db, CommandRouter(db, SystemClock()), clock=SystemClock(), version="t")
bridge.start()
written = 0
while written < events:
    add_events(db, 30)
    written += 10
    print("written", written, flush=True)
time.sleep(3600)
"""


@pytest.mark.timeout(90)
def test_edge_killed_while_publishing_loses_nothing(broker, cloud, tmp_path: Path):
    data_dir = tmp_path / "killed-edge"
    script = tmp_path / "edge_process.py"
    script.write_text(EDGE_PROCESS)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    edge = subprocess.Popen([sys.executable, str(script), str(data_dir), str(broker.port), "3000"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    try:
        for line in edge.stdout:  # kill it mid-stream: writing and publishing at full speed
            progress = re.fullmatch(r"written (\d+)\n", line)
            if progress and int(progress[1]) >= 1500:
                break
        assert cloud.wait_for(lambda: len(device_log(cloud).events) > 100, 20)
        edge.send_signal(signal.SIGKILL)
        edge.wait(10)
        # The broker sends the Last Will: the retained status says the edge is gone.
        assert cloud.wait_for(lambda: device_log(cloud).status is not None
                              and device_log(cloud).status["data"]["online"] is False, 30)
        db = Database(edge_settings(data_dir, broker).database_path)
        assert pending_rows(db) > 0, "nothing was left to drain: the test proves nothing"
        edge = subprocess.Popen([sys.executable, str(script), str(data_dir), str(broker.port), "0"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, text=True)
        assert cloud.wait_for(lambda: pending_rows(db) == 0, 30)
        with db.read() as session:
            last = session.scalar(select(OutboxEvent.seq).order_by(OutboxEvent.seq.desc()).limit(1))
        assert cloud.wait_for(lambda: len(device_log(cloud).events) == last, 30)
        assert_delivered_exactly(db, cloud)
        db.dispose()
    finally:
        edge.kill()
        edge.wait(10)


@pytest.mark.timeout(60)
def test_status_is_retained_and_compartments_republished_on_change(broker, cloud, make_bridge):
    compartments = [{"number": 1, "state": "free", "parcel": None}]
    bridge = make_bridge(compartments=lambda: list(compartments))
    assert cloud.wait_for(lambda: device_log(cloud).compartments is not None, 30)
    assert device_log(cloud).status["data"]["online"] is True
    compartments.append({"number": 2, "state": "occupied", "parcel": {"phone": "138****5678"}})
    for _ in range(5):  # a burst of changes
        bridge.compartments_changed("door.closed", {"compartment": 2})
    assert cloud.wait_for(
        lambda: len(device_log(cloud).compartments["data"]["compartments"]) == 2, 30)
    assert cloud.violations == []
    bridge.stop()
    assert cloud.wait_for(lambda: device_log(cloud).status["data"]["online"] is False, 30)


@pytest.mark.timeout(60)
def test_dropped_telemetry_leaves_only_announced_gaps(broker, cloud, make_bridge, edge_db):
    with edge_db.write() as session:
        outbox.set_budget(session, max_rows=100, max_bytes=10**9)
    telemetry = add_events(edge_db, 80, "telemetry.reported", Priority.TELEMETRY)
    durable = add_events(edge_db, 20) + add_events(edge_db, 30)  # the second batch needs room
    make_bridge()
    assert cloud.wait_for(lambda: set(durable) <= set(device_log(cloud).events), 20)
    assert cloud.wait_for(lambda: pending_rows(edge_db) == 0, 30)
    log = device_log(cloud)
    missing = [seq for seq in range(1, max(log.events) + 1) if seq not in log.events]
    assert missing and set(missing) <= set(telemetry)  # telemetry, and nothing else, was dropped
    assert log.gaps() == []  # every missing seq was announced by outbox.dropped
    assert cloud.violations == []
