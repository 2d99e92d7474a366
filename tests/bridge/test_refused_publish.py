"""A publish the broker refuses (PUBACK with a failure reason code) is held and tried again,
even after later rows have been sent past it (ADR 0037: the fetch skips rows already sent,
and that mark must never hide a held row)."""
from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_bridge import Bridge, CommandRouter
from edge.clock import SystemClock
from edge.storage import Database
from simulators.cloud import CloudSimulator
from tests.support.bridge import DEVICE, SITE, add_events, device_log, edge_settings
from tests.support.bridge import assert_delivered_exactly, pending_rows
from tests.support.mosquitto import Broker

REFUSED_TYPE = "door.closed"


def write_acl(path: Path, *, refuse: bool) -> None:
    deny = f"topic deny edge/v1/{SITE}/{DEVICE}/evt/{REFUSED_TYPE}\n" if refuse else ""
    path.write_text(deny + "topic readwrite #\n")


@pytest.fixture
def strict_broker(tmp_path: Path) -> Iterator[Broker]:
    broker = Broker(tmp_path / "broker")
    acl = tmp_path / "broker" / "acl"
    write_acl(acl, refuse=True)
    broker.config.write_text(broker.config.read_text() + f"acl_file {acl}\n")
    yield broker.start()
    broker.stop()


@pytest.mark.timeout(90)
def test_a_refused_row_is_held_then_delivered_after_later_rows(strict_broker: Broker, tmp_path: Path):
    settings = edge_settings(tmp_path / "edge", strict_broker)
    db = Database(settings.database_path)
    db.upgrade()
    refused = add_events(db, 1, type_=REFUSED_TYPE)[0]
    later = add_events(db, 50)
    cloud = CloudSimulator(strict_broker.host, strict_broker.port, decide=None, client_id="cloud-test",
                           session_expiry_s=3600).start()
    bridge = Bridge(settings, db, CommandRouter(db, SystemClock()), clock=SystemClock(), version="test")
    try:
        assert cloud.connected.wait(10)
        bridge.start()
        assert cloud.wait_for(lambda: pending_rows(db) == 1, 30), "the later rows were not published"
        assert cloud.wait_for(lambda: set(later) <= set(device_log(cloud).events), 10)
        assert refused not in device_log(cloud).events
        write_acl(strict_broker.workdir / "acl", refuse=False)
        strict_broker.process.send_signal(signal.SIGHUP)  # reloads the ACL; sessions stay up
        assert cloud.wait_for(lambda: pending_rows(db) == 0, 30), "the held row was never sent again"
        assert cloud.wait_for(lambda: refused in device_log(cloud).events, 10)
        assert bridge.connect_failures == 0  # the same session: no reconnect reset the fetch
        assert_delivered_exactly(db, cloud)
    finally:
        bridge.stop()
        cloud.stop()
        db.dispose()
