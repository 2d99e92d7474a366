"""An outage's backlog (the bench's scenario, ADR 0165) through a real worker: the stations
flush what they made while offline, with the station times it happened, and go on
producing; everything is stored once, with those times, and every watermark closes."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import psycopg

from fleet.simulate import SteadyStations, connect_fleet, make_stations, outage_backlog, publish_all
from tests.support.fleet import count, wait_until


def test_an_outage_backlog_and_the_events_after_it_are_stored_once_with_their_station_times(
        fleet_settings, pg: psycopg.Connection, start_worker) -> None:
    start_worker(0)
    start_worker(1)  # two workers share the stations, as in the bench
    links = connect_fleet(fleet_settings.mqtt, make_stations(30), 3, name="outage")
    reconnect = datetime.now(timezone.utc)
    backlog = outage_backlog(links, 60, 5, end=reconnect, seed=3)  # 12 events per station
    assert len(backlog) == 30 * 12
    times = [datetime.fromisoformat(json.loads(m[1])["ts"]) for _, m in backlog]
    assert times == sorted(times) and reconnect - timedelta(seconds=60) <= times[0] and times[-1] < reconnect

    steady = SteadyStations(links, 1, start=reconnect, seed=4)
    pending = publish_all(backlog)
    steady.start()
    wait_until(lambda: count(pg, "SELECT count(*) FROM events") >= len(backlog) + 30, what="backlog and more in")
    steady.stop()
    for info in pending:
        info.wait_for_publish(30)
    made = len(backlog) + steady.made
    wait_until(lambda: count(pg, "SELECT count(*) FROM events") == made, what="every event stored")
    for link in links:
        link.stop()

    assert count(pg, "SELECT count(DISTINCT message_id) FROM events") == made
    assert count(pg, "SELECT count(*) FROM events WHERE ts < %s", reconnect) == len(backlog)
    assert count(pg, "SELECT count(*) FROM events WHERE ts >= %s", reconnect) == steady.made
    # Seqs run on from the backlog into the new events: each station's are 1..n, no hole.
    wait_until(lambda: count(pg, "SELECT count(*) FROM devices WHERE watermark = max_seq AND max_seq >= 13") == 30,
               what="every watermark at its station's last seq")
    assert count(pg, "SELECT count(*) FROM gaps WHERE closed_at IS NULL") == 0
