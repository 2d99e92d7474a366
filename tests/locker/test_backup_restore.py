"""Backup and restore end to end: a parcel deposited on a running station, an encrypted
online backup, a restore onto a fresh data folder, and a controller started there that
opens the parcel's door for its pickup code."""
from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge.app import build_controller
from edge.cli import app
from edge.storage import Database, outbox as outbox_module
from tests.support.station import api_client, deposit_parcel, locker_settings, wait_until

pytestmark = pytest.mark.timeout(120)
PASSPHRASE = "correct horse battery staple"


def edge(data_dir: Path, *args: str):
    return CliRunner().invoke(app, list(args), env={"EDGE_DATA_DIR": str(data_dir)})


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def passphrase_file(tmp_path: Path) -> Path:
    path = tmp_path / "passphrase"
    path.write_text(PASSPHRASE + "\n")
    return path


def test_restored_station_opens_a_parcel_deposited_before_the_backup(
        controller, client, courier, sim, tmp_path, passphrase_file):
    spec, deposited = deposit_parcel(controller, client, courier, sim)
    data_dir = controller.settings.data_dir
    backup_file = tmp_path / "station.edgebak"

    taken = edge(data_dir, "backup", str(backup_file), "--passphrase-file", str(passphrase_file))
    assert taken.exit_code == 0, taken.output
    assert mode(backup_file) == 0o600
    assert b"edge.sqlite3" not in backup_file.read_bytes()  # sealed, not a plain tar
    # The running station's folder is refused: its controller holds the bus lock.
    busy = edge(data_dir, "restore", str(backup_file), "--passphrase-file", str(passphrase_file))
    assert busy.exit_code == 2 and "stop it first" in busy.output

    fresh = tmp_path / "fresh"
    restored = edge(fresh, "restore", str(backup_file), "--passphrase-file", str(passphrase_file))
    assert restored.exit_code == 0, restored.output
    assert mode(fresh / "edge.sqlite3") == 0o600
    assert {p.name for p in (fresh / "keys").iterdir()} >= {"pickup_code.key", "pickup_token.key"}
    assert all(mode(p) == 0o600 for p in (fresh / "keys").iterdir())

    controller.stop()  # the old box is gone; the bus now belongs to the restored one
    second = build_controller(locker_settings(fresh, sim.url), clock=controller.clock)
    second.start()
    try:
        reply = api_client(second).post("/api/locker/pickup", json={"code": deposited["pickup_code"]})
        assert reply.status_code == 200, reply.json
        assert reply.json["compartment"] == deposited["compartment"]
        wait_until(lambda: sim.is_open(spec.board, spec.lock), what="door open")
    finally:
        second.stop()


def test_wrong_passphrase_and_tampering_are_refused_in_one_line(controller, tmp_path, passphrase_file):
    data_dir = controller.settings.data_dir
    backup_file = tmp_path / "b.edgebak"
    assert edge(data_dir, "backup", str(backup_file), "--passphrase-file", str(passphrase_file)).exit_code == 0
    # CliRunner swaps sys.stderr for the whole process while a command runs: a log line from
    # the running station's threads would land in the command's output. Stop it first, so
    # the output holds the command's own words only.
    controller.stop()
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase")
    fresh = tmp_path / "fresh"

    refused = edge(fresh, "restore", str(backup_file), "--passphrase-file", str(wrong))
    assert refused.exit_code == 2
    assert refused.output.strip() == "edge: wrong passphrase for this backup"

    blob = bytearray(backup_file.read_bytes())
    blob[-100] ^= 0x01
    tampered = tmp_path / "tampered.edgebak"
    tampered.write_bytes(bytes(blob))
    damaged = edge(fresh, "restore", str(tampered), "--passphrase-file", str(passphrase_file))
    assert damaged.exit_code == 2
    assert damaged.output.strip().startswith("edge: the backup file is damaged or altered")
    assert not (fresh / "edge.sqlite3").exists()  # nothing written on a refusal


def test_backup_sealed_to_a_recipient_key_opens_only_with_its_private_key(controller, tmp_path):
    data_dir = controller.settings.data_dir
    office, public = tmp_path / "office.pem", tmp_path / "station.pub"
    assert edge(data_dir, "backup-keygen", str(office), str(public)).exit_code == 0
    assert mode(office) == 0o600
    backup_file = tmp_path / "r.edgebak"
    assert edge(data_dir, "backup", str(backup_file), "--recipient", str(public)).exit_code == 0

    other, other_public = tmp_path / "other.pem", tmp_path / "other.pub"
    edge(data_dir, "backup-keygen", str(other), str(other_public))
    refused = edge(tmp_path / "fresh", "restore", str(backup_file), "--identity", str(other))
    assert refused.exit_code == 2 and "another recipient key" in refused.output

    restored = edge(tmp_path / "fresh", "restore", str(backup_file), "--identity", str(office))
    assert restored.exit_code == 0, restored.output
    assert (tmp_path / "fresh" / "keys" / "pickup_code.key").read_bytes() == \
        (data_dir / "keys" / "pickup_code.key").read_bytes()


def test_online_backup_is_one_consistent_snapshot_while_a_writer_commits(db, settings, tmp_path):
    from edge.ops.backup import Opening, Sealing, restore_backup, take_backup

    stop = threading.Event()

    def keep_writing() -> None:
        while not stop.is_set():
            with db.write() as session:  # two rows per transaction: a snapshot holds both or neither
                outbox_module.record_event(session, "telemetry.reported", {"n": 1})
                outbox_module.record_event(session, "telemetry.reported", {"n": 2})

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        wait_until(lambda: outbox_module_count(db) >= 20, timeout=30, what="rows written")
        take_backup(settings.data_dir, tmp_path / "live.edgebak", Sealing(passphrase=b"x" * 12))
    finally:
        stop.set()
        writer.join()
    restore_backup(tmp_path / "live.edgebak", tmp_path / "copy", Opening(passphrase=b"x" * 12))
    copy = Database(tmp_path / "copy" / "edge.sqlite3")
    try:
        rows = outbox_module_count(copy)
        assert rows >= 20 and rows % 2 == 0
    finally:
        copy.dispose()


def outbox_module_count(database: Database) -> int:
    from sqlalchemy import func, select

    from edge.storage import OutboxEvent

    with database.read() as session:
        return session.scalar(select(func.count()).select_from(OutboxEvent))
