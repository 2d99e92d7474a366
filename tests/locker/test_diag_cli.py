"""`edge diag` both ways: owning the bus itself when no controller runs, and through the
running controller's local HTTP API when the controller holds the bus lock."""
from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge.storage import Database
from tests.support.cli import diag, logs_on_stderr  # noqa: F401 - fixture
from tests.support.station import audits, deposit_parcel, outbox, wait_until

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("logs_on_stderr")]
def test_without_controller_diag_owns_the_bus(env, sim, tmp_path):
    doors = diag(env, "doors")
    assert doors.exit_code == 0, doors.output
    assert "via local bus" in doors.output
    report = json.loads(diag(env, "doors", "--json").stdout)
    assert len(report["compartments"]) == 32 and all(b["reachable"] for b in report["boards"])

    refused = diag(env, "open", "5", input="y\ny\n")  # stdin is not a terminal: no answer counts
    assert refused.exit_code == 2 and "--yes" in refused.output and not sim.is_open(0, 4)
    opened = diag(env, "open", "5", "--yes", "--json", "--who", "tech-li")
    assert opened.exit_code == 0, opened.output
    assert json.loads(opened.stdout)["opened"] is True and sim.is_open(0, 4)

    sim.jam(0, 5)
    jammed = diag(env, "open", "6", "--yes")
    assert jammed.exit_code == 1 and "did not open" in jammed.output

    db = Database(tmp_path / "data" / "edge.sqlite3")
    try:
        openings = audits(db, "door_open")
        assert [(a.actor, a.actor_id, a.target, a.result) for a in openings] == [
            ("technician", "tech-li", "compartment:5", "opened"),
            ("technician", openings[1].actor_id, "compartment:6", "failed")]
        assert [e.data["compartment"] for e in outbox(db, "door.fault")] == [6]
    finally:
        db.dispose()

    assert diag(env, "selftest").exit_code == 0
    sim.set_offline(1)
    offline = diag(env, "doors", "--json")
    assert offline.exit_code == 1
    assert {c["state"] for c in json.loads(offline.stdout)["compartments"][16:]} == {"unknown"}
    bus = diag(env, "bus", "--json")
    assert bus.exit_code == 1 and json.loads(bus.stdout)["missing"] == [1]
    selftest = diag(env, "selftest", "--json")
    assert selftest.exit_code == 1
    failed = [c["check"] for c in json.loads(selftest.stdout) if c["ok"] is False]
    assert failed == ["board 1 reachable"]


def test_with_controller_running_diag_goes_through_its_api(controller, client, courier, sim, served):
    _, deposited = deposit_parcel(controller, client, courier, sim)
    doors = diag(served, "doors")
    assert doors.exit_code == 0, doors.output
    assert "via controller" in doors.output

    opened = diag(served, "open", "3", "--yes", "--who", "tech-wang")
    assert opened.exit_code == 0, opened.output
    assert sim.is_open(0, 2)
    assert audits(controller.db, "door_open")[-1].actor_id == "tech-wang"

    events = diag(served, "events", "--json", "--limit", "50")
    assert events.exit_code == 0
    assert deposited["pickup_code"] not in events.output
    assert deposited["pickup_token"] not in events.output
    recent = json.loads(events.stdout)
    [stored] = [e for e in recent["outbox"] if e["type"] == "parcel.deposited"]
    assert "pickup_code" not in stored["data"] and stored["data"]["secret"] == "[redacted]"
    human = diag(served, "events", "--limit", "50")
    assert human.exit_code == 0 and deposited["pickup_code"] not in human.output

    sim.set_offline(1)
    offline = diag(served, "doors", "--json")
    assert offline.exit_code == 1
    assert not json.loads(offline.stdout)["boards"][1]["reachable"]


def test_diag_says_so_when_the_controller_holds_the_bus_but_does_not_answer(controller, env):
    from tests.support.ports import free_port

    result = diag({**env, "EDGE_HTTP__PORT": str(free_port())}, "doors")
    assert result.exit_code == 2 and "does not answer" in result.output


def test_a_running_controller_answers_diag_without_any_bus_setting(controller, sim, served):
    """On a simulated station (or any box) the technician needs only the data folder."""
    bare = {k: v for k, v in served.items() if not k.startswith("EDGE_LOCKER__")}
    doors = diag(bare, "doors", "--json")
    assert doors.exit_code == 0, doors.output
    assert [b["board"] for b in json.loads(doors.stdout)["boards"]] == [0, 1]


def test_no_controller_and_no_bus_setting_is_one_clear_line(tmp_path):
    result = diag({"EDGE_DATA_DIR": str(tmp_path / "empty")}, "doors")
    assert result.exit_code == 2
    assert "controller is not running" in result.output and "EDGE_LOCKER__SERIAL_URL" in result.output


# --- edge diag metrics: the running controller's /metrics, or, when it is stopped, what the
# database tells (no event counters, said on stderr).

def samples(text: str) -> dict[str, float]:
    return {s.name + str(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_diag_metrics_reads_the_running_controller(controller, client, courier, sim, served):
    deposit_parcel(controller, client, courier, sim)
    result = diag(served, "metrics")
    assert result.exit_code == 0, result.output
    figures = samples(result.stdout)
    assert figures["edge_compartments[('state', 'occupied')]"] == 1
    assert any(name.startswith("edge_door_openings_total") for name in figures)


def test_diag_metrics_without_a_controller_reads_the_database(controller, sim, env):
    from tests.support.ports import free_port

    sim.open_door(0, 2)  # an event that waits for a cloud that is not configured
    wait_until(lambda: outbox(controller.db, "door.opened"), what="door.opened")
    controller.stop()  # a stopped station: its database is still there
    result = diag({**env, "EDGE_HTTP__PORT": str(free_port())}, "metrics")
    assert result.exit_code == 0, result.output
    assert "state read from the database" in result.stderr
    figures = samples(result.stdout)
    assert figures["edge_outbox_pending_events[]"] >= 1  # door events recorded at start
    assert figures["edge_disk_free_bytes[]"] > 0
