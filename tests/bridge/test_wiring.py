"""The composition root's bridge: cloud commands reach the real services, and what the
services record reaches the cloud, conforming to the contract."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from edge.app import build_controller
from edge.community import Resident
from tests.support.bridge import DEVICE, SITE, device_log, edge_settings

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(90)]
EDGE = (SITE, DEVICE)


def online(cloud) -> bool:
    return (device_log(cloud).status or {}).get("data", {}).get("online") is True


def test_commands_drive_the_services_and_their_events_reach_the_cloud(controller, cloud):
    from simulators.cloud import approve_unless_evening, load_catalogue

    assert cloud.wait_for(lambda: online(cloud), 30)
    catalogue = load_catalogue(None, SITE)
    synced = cloud.send_command(EDGE, "catalogue.sync", catalogue)
    assert cloud.wait_reply(synced)[0]["ok"] is True
    opened = cloud.send_command(EDGE, "locker.open", {"compartment": 1, "operator": "ops-zhang",
                                                      "reason": "wiring test"})
    assert cloud.wait_reply(opened, timeout=30)[0]["ok"] is True
    assert cloud.wait_for(lambda: any(e["type"] == "door.opened" for e in device_log(cloud).events.values()))
    assert cloud.wait_for(lambda: device_log(cloud).compartments is not None)

    cloud.decide = approve_unless_evening  # the cloud answers booking requests by its rule
    bookings = controller.services.bookings
    venue = catalogue["venues"][0]["id"]
    tz = ZoneInfo(controller.settings.site.timezone)
    day = (datetime.now(tz) + timedelta(days=2)).date()
    slot = next(s for s in bookings.day_slots(venue, day) if s.state == "free")
    resident = Resident("res-wiring", "王*明", "138****5678")
    booking = bookings.request(resident, venue, slot.start)
    approved, _reason = approve_unless_evening({"start": slot.start.astimezone(ZoneInfo("UTC")).isoformat()})
    expected = "approved" if approved else "rejected"
    assert cloud.wait_for(lambda: bookings.bookings_of("res-wiring")[0].state == expected, 30)
    assert booking.booking_id == bookings.bookings_of("res-wiring")[0].booking_id
    assert device_log(cloud).gaps() == [] and cloud.violations == []


def test_a_remote_open_of_a_jammed_door_is_a_failed_command(controller, cloud):
    assert cloud.wait_for(lambda: online(cloud), 30)
    spec = controller.services.locker.compartment_location(5)
    controller.simulation.lockboard.jam(spec.board, spec.lock)

    sent = cloud.send_command(EDGE, "locker.open", {"compartment": 5, "operator": "ops-li", "reason": "test"})

    [reply] = cloud.wait_reply(sent, timeout=30)
    assert reply["ok"] is False and reply["error"]["code"] == "door_not_opened"
    assert cloud.wait_for(lambda: any(e["type"] == "door.fault" for e in device_log(cloud).events.values()))


def test_simulate_mode_brings_its_own_broker_and_cloud(tmp_path):
    from simulators.cloud import CloudSimulator, PrivateBroker

    settings = edge_settings(tmp_path / "edge", None)
    settings.simulate = True
    controller = build_controller(settings)
    try:
        kinds = [type(c) for c in controller.components]
        assert PrivateBroker in kinds and CloudSimulator in kinds
        controller.start()
        cloud = next(c for c in controller.components if isinstance(c, CloudSimulator))
        assert cloud.wait_for(lambda: online(cloud), 30)
        assert not controller.services.catalogue.is_empty()  # the kiosk has content
        pinged = cloud.send_command(EDGE, "ping", {})
        assert cloud.wait_reply(pinged)[0]["ok"] is True
        assert cloud.violations == []
    finally:
        controller.stop()
