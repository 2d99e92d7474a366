"""Each metric moves on a real event: doors opened through the API, codes and QR tokens
tried, an iris probe, a board that stops answering, a door left open, an outbox that waits.
Read through the local /metrics endpoint, as Prometheus (or `edge diag metrics`) reads it."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from edge.ops.metrics import StationCollector
from simulators.camera import SimulatedCamera
from simulators.people import synthetic_person
from tests.support.station import deposit_parcel, wait_until

pytestmark = pytest.mark.timeout(90)


def scrape(client) -> dict[tuple[str, tuple], float]:
    reply = client.get("/metrics")
    assert reply.status_code == 200 and reply.mimetype == "text/plain"
    return parse(reply.get_data(as_text=True))


def parse(text: str) -> dict[tuple[str, tuple], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_door_openings_attempts_and_compartments_move_with_real_events(controller, client, courier, sim):
    before = scrape(client)
    assert value(before, "edge_compartments", state="free") == 32
    spec, deposited = deposit_parcel(controller, client, courier, sim)

    after_deposit = scrape(client)
    assert value(after_deposit, "edge_compartments", state="occupied") == 1
    assert value(after_deposit, "edge_compartments", state="free") == 31
    assert value(after_deposit, "edge_door_openings_total", result="opened", actor="courier") == \
        value(before, "edge_door_openings_total", result="opened", actor="courier") + 1
    assert value(after_deposit, "edge_events_recorded_total", type="parcel.deposited") == \
        value(before, "edge_events_recorded_total", type="parcel.deposited") + 1

    wrong = "00000000" if deposited["pickup_code"] != "00000000" else "11111111"
    assert client.post("/api/locker/pickup", json={"code": wrong}).status_code == 403
    token = deposited["pickup_token"]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.post("/api/locker/pickup/token", json={"token": forged}).status_code in (400, 403)
    assert client.post("/api/locker/pickup", json={"code": deposited["pickup_code"]}).status_code == 200

    after_pickup = scrape(client)
    assert value(after_pickup, "edge_pickup_code_attempts_total", result="wrong") == \
        value(before, "edge_pickup_code_attempts_total", result="wrong") + 1
    assert value(after_pickup, "edge_pickup_code_attempts_total", result="accepted") == \
        value(before, "edge_pickup_code_attempts_total", result="accepted") + 1
    qr_refusals = sum(v for (name, labels), v in after_pickup.items()
                      if name == "edge_qr_attempts_total" and dict(labels)["result"].startswith("refused"))
    qr_before = sum(v for (name, labels), v in before.items()
                    if name == "edge_qr_attempts_total" and dict(labels)["result"].startswith("refused"))
    assert qr_refusals == qr_before + 1
    assert value(after_pickup, "edge_door_openings_total", result="opened", actor="resident") == \
        value(before, "edge_door_openings_total", result="opened", actor="resident") + 1
    assert value(after_pickup, "edge_compartments", state="pickup") == 1
    # latency: every request above was timed by its route, not its URL
    assert value(after_pickup, "edge_kiosk_request_seconds_count", route="/api/locker/pickup", method="POST") >= \
        value(before, "edge_kiosk_request_seconds_count", route="/api/locker/pickup", method="POST") + 2


def test_a_failed_opening_and_a_silent_board_are_counted_per_board(controller, client, sim):
    before = scrape(client)
    sim.jam(1, 4)
    reply = client.post("/api/diag/open", json={"compartment": 21, "who": "tech-li"})
    assert reply.status_code in (200, 409, 502), reply.json
    sim.set_offline(1)
    wait_until(lambda: value(scrape(client), "edge_bus_errors_total", board="1", kind="timeout")
               > value(before, "edge_bus_errors_total", board="1", kind="timeout"), what="bus timeouts")
    after = scrape(client)
    assert value(after, "edge_door_openings_total", result="failed", actor="technician") == \
        value(before, "edge_door_openings_total", result="failed", actor="technician") + 1
    assert value(after, "edge_bus_errors_total", board="0", kind="timeout") == \
        value(before, "edge_bus_errors_total", board="0", kind="timeout")  # board 0 still answers
    wait_until(lambda: value(scrape(client), "edge_compartments", state="unknown") == 15,
               what="board 1's doors unknown")  # and 21, jammed, shows as a fault
    assert value(scrape(client), "edge_compartments", state="fault") == 1


def test_a_door_left_open_and_the_waiting_outbox_show(controller, client, sim, fake_clock):
    sim.open_door(0, 2)  # forced open, no command
    wait_until(lambda: value(scrape(client), "edge_outbox_pending_events") >= 1, what="door.opened queued")
    assert value(scrape(client), "edge_doors_left_open") == 0
    fake_clock.advance(seconds=61)
    wait_until(lambda: value(scrape(client), "edge_doors_left_open") == 1, what="left open")
    samples = scrape(client)
    assert value(samples, "edge_outbox_oldest_age_seconds") >= 61  # no broker: nothing acknowledged
    sim.close_door(0, 2)
    wait_until(lambda: value(scrape(client), "edge_doors_left_open") == 0, what="closed")
    assert value(samples, "edge_disk_free_bytes") > 0


def test_iris_attempts_are_counted_by_result(controller, client):
    before = value(scrape(client), "edge_iris_attempts_total", result="nobody_enrolled")
    camera = SimulatedCamera(fps=None, seed=3)
    camera.show_eye(synthetic_person("res-metrics"))
    controller.services.iris.identify(camera.read())
    assert value(scrape(client), "edge_iris_attempts_total", result="nobody_enrolled") == before + 1


def test_temperature_and_under_voltage_where_the_board_has_them(controller, tmp_path: Path):
    absent = parse(generate_latest(_registry(controller, tmp_path / "none", None)).decode())
    assert not any(name.startswith(("edge_cpu_temperature", "edge_undervoltage")) for name, _ in absent)

    zone = tmp_path / "thermal" / "thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "temp").write_text("61234\n")
    vcgencmd = tmp_path / "vcgencmd"  # the Pi firmware tool's reply: under-voltage now and since boot
    vcgencmd.write_text("#!/bin/sh\necho throttled=0x50005\n")
    vcgencmd.chmod(vcgencmd.stat().st_mode | stat.S_IEXEC)
    present = parse(generate_latest(_registry(controller, tmp_path / "thermal", str(vcgencmd))).decode())
    assert value(present, "edge_cpu_temperature_celsius", zone="thermal_zone0") == pytest.approx(61.234)
    assert value(present, "edge_undervoltage") == 1 and value(present, "edge_undervoltage_since_boot") == 1
    assert value(present, "edge_throttled") == 1


def _registry(controller, thermal_root: Path, vcgencmd: str | None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StationCollector(controller, thermal_root=thermal_root, vcgencmd=vcgencmd))
    return registry


def test_the_grafana_dashboard_charts_only_metrics_the_station_exports(controller, client):
    import json
    import re

    dashboard = json.loads((Path(__file__).parents[2] / "deploy" / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    charted = {re.sub(r"_(bucket|count|sum)$", "", name) for expr in exprs
               for name in re.findall(r"\bedge_[a-z_]+", expr)}
    families = list(text_string_to_metric_families(client.get("/metrics").get_data(as_text=True)))
    samples = {re.sub(r"_(bucket|count|sum|created)$", "", sample.name)
               for family in families for sample in family.samples}
    samples |= {f"{family.name}_total" for family in families if family.type == "counter"}
    samples |= {family.name for family in families}
    # Shown only where they exist: a board with sensors, a session that had a PUBACK.
    samples |= {"edge_cpu_temperature_celsius", "edge_undervoltage", "edge_mqtt_seconds_since_last_puback"}
    assert charted and charted <= samples, charted - samples
