"""Operation records: the audit trail is append-only in the database (triggers), kept for the
site's retention, purged in batches by the scheduler's job with the purge itself recorded, and
exported by `edge diag export` (CSV or JSON Lines) with every drop-off, pickup, return, door
opening and refused code - across a purge boundary."""
from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from edge.cli import app
from edge.storage.records import RecordsJobs, purge_expired
from tests.support.station import audits, deposit_parcel, pickup_state, wait_until

pytestmark = pytest.mark.timeout(120)
runner = CliRunner()


@pytest.fixture(autouse=True)
def _controller_logs_off_stdout():
    """The in-process controller's log lines must not land in the CLI's captured stdout."""
    import sys

    import structlog

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.__stderr__))
    yield
    structlog.reset_defaults()


def a_day_of_work(controller, client, courier, sim):
    """A drop-off, a refused code, a pickup (opening + collection) and a technician's opening."""
    spec, deposited = deposit_parcel(controller, client, courier, sim)
    assert client.post("/api/locker/pickup", json={"code": "00000000"}).status_code == 403
    pickup = client.post("/api/locker/pickup", json={"code": deposited["pickup_code"]}).json
    sim.set_item(spec.board, spec.lock, False)
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: pickup_state(client, pickup["pickup_id"]) == "collected", what="collected")
    assert client.post("/api/diag/open", json={"compartment": 30, "who": "tech-li"}).json["opened"]
    sim.close_door(1, 13)
    return deposited["parcel_id"]


def test_the_audit_refuses_update_and_delete(controller, client):
    client.post("/api/locker/pickup", json={"code": "00000000"})
    [row] = audits(controller.db, "pickup_code")
    for statement in ("UPDATE audit SET result = 'accepted'", "DELETE FROM audit",
                      "UPDATE audit SET ts = '2000-01-01 00:00:00'"):
        with pytest.raises(Exception, match="append-only|retention purge"):
            with controller.db.write() as s:
                s.execute(text(statement))
    # a purge window does not let a row younger than it go
    with pytest.raises(Exception, match="retention purge"):
        with controller.db.write() as s:
            s.execute(text("INSERT INTO audit_purge_window (id, before) VALUES (1, '2000-01-01 00:00:00')"))
            s.execute(text("DELETE FROM audit"))
    [still] = audits(controller.db, "pickup_code")
    assert (still.id, still.result) == (row.id, "wrong")


def test_export_over_a_purge_boundary(controller, client, courier, sim, fake_clock, tmp_path):
    retention = controller.settings.records.retention_days
    assert retention == 180  # the default
    old_parcel = a_day_of_work(controller, client, courier, sim)
    old_rows = len(audits(controller.db))
    fake_clock.advance(days=100)
    boundary = fake_clock.now()
    new_parcel = a_day_of_work(controller, client, courier, sim)
    fake_clock.advance(days=90)  # the first day is now past the retention, the second is not

    # the scheduler's job, in batches smaller than the backlog
    purged = purge_expired(controller.db, retention, batch_rows=3, clock=fake_clock)
    assert purged == old_rows
    purges = audits(controller.db, "records_purge")
    assert len(purges) == -(-old_rows // 3) and sum(p.detail["deleted"] for p in purges) == old_rows
    jobs = next(c for c in controller.components if isinstance(c, RecordsJobs))
    assert jobs.run_once() == 0  # nothing more to purge; nothing recorded for nothing
    assert len(audits(controller.db, "records_purge")) == len(purges)

    env = {"EDGE_DATA_DIR": str(controller.settings.data_dir)}
    exported = runner.invoke(app, ["diag", "export", "--since", "2026-11-01", "--format", "jsonl"], env=env)
    assert exported.exit_code == 0, exported.output
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    targets = {r["target"] for r in rows}
    assert old_parcel not in targets and new_parcel in targets
    kinds = {(r["action"], r["result"]) for r in rows}
    assert {("deposit", "deposited"), ("pickup_code", "wrong"), ("pickup_code", "accepted"),
            ("door_open", "opened"), ("pickup", "collected"), ("records_purge", "ok")} <= kinds
    assert min(r["ts"] for r in rows) >= boundary.isoformat()[:10]

    # CSV over just the second day, into a file; --until includes its day
    out = tmp_path / "records.csv"
    day = boundary.date().isoformat()
    as_csv = runner.invoke(app, ["diag", "export", "--since", day, "--until", day, "--format", "csv",
                                 "--output", str(out)], env=env)
    assert as_csv.exit_code == 0, as_csv.output
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {r["action"] for r in table} >= {"deposit", "pickup_code", "door_open", "pickup"}
    assert "records_purge" not in {r["action"] for r in table}  # that happened 90 days later
    assert all(json.loads(r["detail"]) is not None for r in table)

    bad = runner.invoke(app, ["diag", "export", "--since", "yesterday"], env=env)
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
    wrong_format = runner.invoke(app, ["diag", "export", "--since", day, "--format", "xml"], env=env)
    assert wrong_format.exit_code == 2 and "csv" in wrong_format.output
