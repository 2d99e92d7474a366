"""What the bridge tests share: the device they play, settings for a bridge on a broker, and
readers of what reached the cloud."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from edge.settings import Settings, load_settings
from edge.storage import Database, OutboxEvent, outbox, record_event
from simulators.cloud import CloudSimulator
from tests.support.mosquitto import Broker

SITE, DEVICE = "test-site", "kiosk-07"


def edge_settings(data_dir: Path, broker: Broker | None, **mqtt: object) -> Settings:
    mqtt_settings: dict[str, object] = {"site_id": SITE, "device_id": DEVICE, "reconnect_min_s": 0.05,
                                        "reconnect_max_s": 0.5}
    if broker is not None:
        mqtt_settings.update(host=broker.host, port=broker.port)
    mqtt_settings.update(mqtt)
    return load_settings(data_dir=data_dir, http={"port": 0}, mqtt=mqtt_settings)


def persistent_broker(workdir: Path, port: int | None = None) -> Broker:
    return Broker(workdir, port)  # persistence works as root too: see tests/support/mosquitto.py


def add_events(db: Database, count: int, type_: str = "door.opened",
               priority: outbox.Priority = outbox.Priority.NORMAL) -> list[int]:
    seqs = []
    with db.write() as session:
        for n in range(count):
            seqs.append(record_event(session, type_, {"compartment": n % 32 + 1}, priority=priority).seq)
    return seqs


def device_log(cloud: CloudSimulator):
    return cloud.devices[(SITE, DEVICE)]


def pending_rows(db: Database) -> int:
    with db.read() as session:
        return outbox.pending(session)[0]


def assert_delivered_exactly(db: Database, cloud) -> None:
    """Every committed event reached the cloud under its own message_id; nothing else did."""
    log = device_log(cloud)
    with db.read() as session:
        rows = session.execute(select(OutboxEvent.seq, OutboxEvent.message_id)).all()
    assert rows, "the test wrote no events"
    assert {seq: log.events[seq]["message_id"] for seq, _ in rows if seq in log.events} == dict(rows)
    assert log.gaps() == []
    assert cloud.violations == []
