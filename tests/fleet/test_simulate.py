"""`fleet simulate`: stations with outages and duplicates; every event stored exactly once."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.fleet import count, wait_until


def test_fleet_simulate_with_outages_and_duplicates_is_stored_exactly_once(fleet_settings, pg, start_worker) -> None:
    start_worker(0)
    env = {**os.environ, "FLEET_MQTT__HOST": fleet_settings.mqtt.host,
           "FLEET_MQTT__PORT": str(fleet_settings.mqtt.port)}
    result = subprocess.run(
        [str(Path(sys.executable).with_name("fleet")), "simulate", "--edges", "60", "--events", "10",
         "--duplicate", "0.1", "--reorder", "0.1", "--missing", "0", "--outage", "0.02", "--linger", "0"],
        env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "stations 60  events 600" in result.stdout
    wait_until(lambda: count(pg, "SELECT count(*) FROM events") == 600, what="600 events stored")
    assert count(pg, "SELECT count(DISTINCT message_id) FROM events") == 600
    wait_until(lambda: count(pg, "SELECT count(*) FROM devices WHERE watermark = 10") == 60,
               what="every watermark at 10")
    wait_until(lambda: count(pg, "SELECT count(*) FROM devices WHERE online") == 60, what="all back online")
