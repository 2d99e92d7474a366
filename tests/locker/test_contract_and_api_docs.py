"""Every locker event and the compartment snapshot match the cloud contract's schemas, and
every locker/diag/simulator route is in the OpenAPI document."""
from __future__ import annotations

import pytest

from cloud_bridge import contract
from edge.clock import iso_utc
from edge.kiosk_ui import create_app
from tests.support.station import deposit_parcel, locker_settings, outbox, wait_until

pytestmark = pytest.mark.timeout(60)


def envelope(event, settings):
    return {"message_id": event.message_id, "seq": event.seq, "type": event.type, "ts": iso_utc(event.ts),
            "site_id": settings.mqtt.site_id, "device_id": settings.mqtt.device_id, "data": event.data}


def test_locker_events_and_snapshot_match_the_contract(controller, client, courier, sim, fake_clock):
    locker = controller.services.locker
    sim.jam(0, 0)
    spec, deposited = deposit_parcel(controller, client, courier, sim, size="S")  # door.fault on 1
    pickup = client.post("/api/locker/pickup", json={"code": deposited["pickup_code"]}).json
    sim.set_item(spec.board, spec.lock, False)
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: outbox(controller.db, "parcel.collected"), what="collected")
    spec, overdue = deposit_parcel(controller, client, courier, sim, size="L")
    fake_clock.advance(hours=73)
    locker.check_retention()
    client.post("/api/locker/returns", headers=courier, json={"parcel_id": overdue["parcel_id"]})
    fake_clock.advance(seconds=61)
    wait_until(lambda: outbox(controller.db, "door.left_open"), what="left open")
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: outbox(controller.db, "parcel.returned"), what="returned")
    locker.reconcile()
    # A finding reconcile always makes: a door opened by hand could be seen by the door
    # monitor first (under load it was), leaving reconcile nothing to report.
    sim.set_offline(1)
    assert {"finding": "board_unreachable", "board": 1} in [
        {k: f[k] for k in ("finding", "board")} for f in locker.reconcile() if "board" in f]
    sim.set_offline(1, False)

    events = outbox(controller.db)
    types = {e.type for e in events}
    assert types >= {"door.opened", "door.closed", "door.fault", "door.left_open", "parcel.deposited",
                     "parcel.collected", "parcel.overdue", "parcel.returned", "locker.reconciled"}
    for event in events:
        assert contract.errors(f"evt.{event.type}", envelope(event, controller.settings)) == [], event.type
    snapshot = {"message_id": "0123456789", "type": "state.compartments", "ts": iso_utc(fake_clock.now()),
                "site_id": "s", "device_id": "d", "data": {"compartments": locker.snapshot()}}
    assert contract.errors("state.compartments", snapshot) == []
    assert pickup["state"] == "door_open"


def test_every_locker_route_is_documented(tmp_path, sim, fake_clock):
    from edge.app import build_controller
    
    settings = locker_settings(tmp_path / "data", sim.url)
    settings.simulate = True  # registers the simulator routes too (with a serial URL: no own simulator)
    controller = build_controller(settings, clock=fake_clock)
    try:
        controller.simulation.lockboard = sim
        app = create_app(controller)
        document = app.test_client().get("/api/openapi.json").json
        assert document["openapi"].startswith("3.")
        documented = {(path, method) for path, methods in document["paths"].items() for method in methods}
        routes = {(rule.rule.replace("<", "{").replace(">", "}"), method.lower())
                  for rule in app.url_map.iter_rules()
                  if rule.rule.startswith(("/api/locker", "/api/diag", "/api/sim/lockboard"))
                  for method in rule.methods - {"HEAD", "OPTIONS"}}
        assert routes and routes <= documented, routes - documented
        for path, methods in document["paths"].items():
            for op in methods.values():
                assert op["responses"] and op["summary"], path
    finally:
        controller.stop()
