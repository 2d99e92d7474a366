"""`edge diag metrics`: the running controller's /metrics, or, when it is stopped, what the
database tells (no event counters, said on stderr)."""
from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.locker.test_diag_cli import _controller_logs_off_stdout, diag, env, served  # noqa: F401
from tests.locker.test_pickup import deposit_parcel


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


def test_diag_metrics_without_a_controller_reads_the_database(controller, sim, env):  # noqa: F811
    from tests.locker.conftest import outbox, wait_until
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
