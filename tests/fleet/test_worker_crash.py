"""`fleet ingest --workers 2` as a real process tree: kill -9 of a worker mid-burst loses
nothing and stores nothing twice."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import psycopg

from fleet.simulate import burst, connect_fleet, make_stations
from tests.support.fleet import count, wait_until


class FleetProcess:
    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        fleet = Path(sys.executable).with_name("fleet")
        self.process = subprocess.Popen([str(fleet), *args], env=env, stderr=subprocess.PIPE,
                                        stdout=subprocess.DEVNULL, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)

    def matches(self, pattern: str) -> list[re.Match]:
        return [m for line in list(self.lines) if (m := re.search(pattern, line))]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def test_kill_9_of_a_worker_mid_burst_loses_nothing_and_stores_nothing_twice(
        fleet_settings, pg: psycopg.Connection, database_url: str) -> None:
    env = {**os.environ, "FLEET_DATABASE_URL": database_url,
           "FLEET_MQTT__HOST": fleet_settings.mqtt.host, "FLEET_MQTT__PORT": str(fleet_settings.mqtt.port),
           "FLEET_MQTT__CLIENT_ID_PREFIX": fleet_settings.mqtt.client_id_prefix,
           "FLEET_INGEST__BATCH_SIZE": "50"}
    fleet = FleetProcess(["ingest", "--workers", "2"], env)
    try:
        wait_until(lambda: len(fleet.matches(r"ingest_connected")) >= 2, timeout=60, what="two workers subscribed")
        victim = int(fleet.matches(r"worker_started\s+index=0 pid=(\d+)")[0].group(1))
        links = connect_fleet(fleet_settings.mqtt, make_stations(100), 4, name="crash")
        sender = threading.Thread(target=burst, args=(links, 40), daemon=True)
        sender.start()
        wait_until(lambda: count(pg, "SELECT count(*) FROM events") > 500, timeout=60, what="burst under way")
        os.kill(victim, signal.SIGKILL)
        sender.join(120)
        wait_until(lambda: len(fleet.matches(r"worker_died")) == 1, what="the supervisor saw it die")
        wait_until(lambda: count(pg, "SELECT count(*) FROM events") >= 4000, timeout=120, what="every event stored")
        wait_until(lambda: len(fleet.matches(r"ingest_connected")) >= 3, what="the worker came back")
        wait_until(lambda: count(pg, "SELECT count(*) FROM devices WHERE watermark = 40") == 100,
                   what="every watermark at 40")
        for link in links:
            link.stop()
    finally:
        fleet.stop()
    assert fleet.process.returncode == 0
    assert count(pg, "SELECT count(*) FROM events") == 4000
    assert count(pg, "SELECT count(DISTINCT message_id) FROM events") == 4000
