"""Compartments out of service for maintenance: by a technician (`edge diag maintenance`, through
the running controller's local API) and by the cloud (`compartment.maintenance`); never assigned;
a parcel already inside stays collectable; shown in words in `edge diag doors` and the snapshot."""
from __future__ import annotations

import json
import uuid

import pytest

from cloud_bridge import contract
from edge.clock import iso_utc
from tests.support.station import audits, deposit_parcel, outbox, pickup_state, wait_until
from tests.support.cli import diag, logs_on_stderr  # noqa: F401 - fixture

pytestmark = [pytest.mark.timeout(90), pytest.mark.usefixtures("logs_on_stderr")]


def snapshot_of(client, number):
    return client.get("/api/locker/compartments").json["compartments"][number - 1]


def small_compartments(controller):
    return sorted(n for n, spec in controller.services.locker.doors.layout.items() if spec.size == "S")


def test_technician_takes_a_compartment_out_and_back_through_the_running_controller(
        controller, client, courier, sim, served):  # noqa: F811
    first = small_compartments(controller)[0]
    refused = diag(served, "maintenance", str(first), "on")
    assert refused.exit_code != 0 and "--reason" in refused.output
    took = diag(served, "maintenance", str(first), "on", "--reason", "hinge broken", "--who", "tech-li")
    assert took.exit_code == 0, took.output
    assert "out of service" in took.stdout

    doors = diag(served, "doors")
    assert doors.exit_code == 0, doors.output
    row = next(line for line in doors.stdout.splitlines() if line.strip("│ ").startswith(f"{first} "))
    assert "maintenance" in row
    assert f"compartment {first} out of service for maintenance: hinge broken" in doors.stdout
    as_json = json.loads(diag(served, "doors", "--json").stdout)
    entry = as_json["compartments"][first - 1]
    assert entry["state"] == "maintenance" and entry["maintenance"] == "hinge broken"
    assert snapshot_of(client, first)["state"] == "maintenance"

    # never assigned: a small deposit goes elsewhere
    reply = client.post("/api/locker/deposits", headers=courier,
                        json={"waybill": "SF0001", "phone": "13812345678", "size": "S"})
    assert reply.status_code == 201, reply.json
    assert reply.json["compartment"] != first
    client.post(f"/api/locker/deposits/{reply.json['deposit_id']}/cancel", headers=courier)

    back = diag(served, "maintenance", str(first), "off", "--who", "tech-li")
    assert back.exit_code == 0 and "back in service" in back.stdout
    assert snapshot_of(client, first)["state"] == "free"
    assert [(a.actor, a.actor_id, a.target, a.result, a.detail["reason"])
            for a in audits(controller.db, "maintenance")] == [
        ("technician", "tech-li", f"compartment:{first}", "on", "hinge broken"),
        ("technician", "tech-li", f"compartment:{first}", "off", "")]
    changes = outbox(controller.db, "compartment.maintenance_changed")
    assert [(e.data["compartment"], e.data["maintenance"]) for e in changes] == [(first, True), (first, False)]


def test_every_small_compartment_in_maintenance_means_no_small_deposit(controller, client, courier):
    locker = controller.services.locker
    from edge.storage import Actor

    for number in small_compartments(controller):
        locker.set_maintenance(number, True, "deep clean", Actor.TECHNICIAN, "tech-li")
    reply = client.post("/api/locker/deposits", headers=courier,
                        json={"waybill": "SF0002", "phone": "13812345678", "size": "S"})
    assert reply.status_code == 409 and reply.json["error"]["code"] == "no_free_compartment"


def test_maintenance_while_a_parcel_is_inside_keeps_it_collectable(controller, client, courier, sim):
    spec, deposited = deposit_parcel(controller, client, courier, sim, size="S")
    number = deposited["compartment"]
    router = controller.services.bridge._router  # the controller's own command router
    command = {"message_id": str(uuid.uuid4()), "type": "compartment.maintenance",
               "ts": iso_utc(controller.clock.now()), "transaction_id": str(uuid.uuid4()),
               "data": {"compartment": number, "maintenance": True, "operator": "ops-zhang",
                        "reason": "lock worn"}}
    outcome = router.handle("compartment.maintenance", json.dumps(command).encode())
    assert outcome["ok"] is True and outcome["result"]["parcel_inside"] is True, outcome

    entry = snapshot_of(client, number)
    assert entry["state"] == "occupied" and entry["maintenance"] == "lock worn"
    [remote] = audits(controller.db, "maintenance")
    assert (remote.actor, remote.actor_id, remote.result) == ("remote", "ops-zhang", "on")

    pickup = client.post("/api/locker/pickup", json={"code": deposited["pickup_code"]})
    assert pickup.status_code == 200, pickup.json
    sim.set_item(spec.board, spec.lock, False)
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: pickup_state(client, pickup.json["pickup_id"]) == "collected", what="collected")
    # emptied, it stays out of service: never assigned until a technician puts it back
    assert snapshot_of(client, number)["state"] == "maintenance"
    for _ in range(3):
        reply = client.post("/api/locker/deposits", headers=courier,
                            json={"waybill": f"SF9{_}", "phone": "13812345678", "size": "S"})
        assert reply.json["compartment"] != number
        client.post(f"/api/locker/deposits/{reply.json['deposit_id']}/cancel", headers=courier)

    [event] = outbox(controller.db, "compartment.maintenance_changed")
    envelope = {"message_id": event.message_id, "seq": event.seq, "type": event.type, "ts": iso_utc(event.ts),
                "site_id": "s", "device_id": "d", "data": event.data}
    assert contract.errors("evt.compartment.maintenance_changed", envelope) == []
    snapshot = {"message_id": "0123456789", "type": "state.compartments", "ts": iso_utc(controller.clock.now()),
                "site_id": "s", "device_id": "d",
                "data": {"compartments": controller.services.locker.snapshot()}}
    assert contract.errors("state.compartments", snapshot) == []


def test_bad_maintenance_requests_are_refused_plainly(controller, client):
    assert client.post("/api/diag/maintenance", json={"compartment": 3, "on": "yes"}).status_code == 400
    no_reason = client.post("/api/diag/maintenance", json={"compartment": 3, "on": True})
    assert no_reason.status_code == 400 and no_reason.json["error"]["code"] == "bad_reason"
    missing = client.post("/api/diag/maintenance", json={"compartment": 99, "on": True, "reason": "x"})
    assert missing.status_code == 404
    router = controller.services.bridge._router
    bad = {"message_id": str(uuid.uuid4()), "type": "compartment.maintenance",
           "ts": iso_utc(controller.clock.now()), "transaction_id": str(uuid.uuid4()),
           "data": {"compartment": 3.0, "maintenance": True, "operator": "ops"}}
    assert router.handle("compartment.maintenance", json.dumps(bad).encode())["error"]["code"] == "invalid"
    assert audits(controller.db, "maintenance") == []
