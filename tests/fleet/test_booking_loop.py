"""A booking made at a real kiosk, approved in the staff console, reaches the kiosk:
edge -> Mosquitto -> fleet ingest -> PostgreSQL -> console -> booking.decision -> edge."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from edge.app import build_controller
from edge.community import Resident
from fleet.commands import CommandSender
from fleet.console.catalogue import save_catalogue
from fleet.console import accounts
from fleet.console.app import create_app
from simulators.cloud import load_catalogue
from tests.support.bridge import DEVICE, SITE, edge_settings
from tests.support.fleet import count, wait_until

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(180)]
PASSWORD = "correct horse battery"


def now() -> datetime:
    return datetime.now(timezone.utc)


def test_a_booking_approved_in_the_console_reaches_the_kiosk(tmp_path, broker, fleet_settings, pg,
                                                             start_worker) -> None:
    with pg.transaction():
        district = accounts.add_unit(pg, "大鹏新区", "district")
        street = accounts.add_unit(pg, "南澳街道", "street", district)
        community = accounts.add_unit(pg, "南澳社区", "community", street)
        accounts.assign_station(pg, SITE, DEVICE, community)
        staff_id = accounts.add_staff(pg, "li", "李社工", PASSWORD, community)
    start_worker(0)
    sender = CommandSender(fleet_settings, now=now).start()
    settings = edge_settings(tmp_path / "edge", broker)
    settings.simulate = True
    controller = build_controller(settings)
    controller.start()
    try:
        wait_until(controller.services.bridge.connected.is_set, what="the kiosk online")
        catalogue = load_catalogue(None, SITE)
        # The platform's copy of the station's catalogue, sent as staff would from the console.
        version = save_catalogue(pg, accounts.staff_by_id(pg, staff_id), SITE, DEVICE, catalogue, now())
        pg.commit()  # the staff lookup opened the test connection's transaction
        sender.wake()
        venue = catalogue["venues"][0]["id"]
        bookings = controller.services.bookings
        wait_until(lambda: controller.services.catalogue.version() == version, what="catalogue synced")
        wait_until(lambda: count(pg, "SELECT count(*) FROM events WHERE type = 'command.reply'") == 1,
                   what="the catalogue.sync reply ingested")
        day = (datetime.now(ZoneInfo(settings.site.timezone)) + timedelta(days=2)).date()
        slot = wait_until(lambda: next((s for s in bookings.day_slots(venue, day) if s.state == "free"), None),
                          what="a free slot")
        booking = bookings.request(Resident("res-loop", "王*明", "138****5678"), venue, slot.start)
        wait_until(lambda: count(pg, "SELECT count(*) FROM bookings WHERE state = 'pending'") == 1,
                   what="the booking request ingested")

        console = create_app(fleet_settings, now=now, on_command=sender.wake).test_client()
        token = re.search(r'name="csrf_token" value="([^"]+)"', console.get("/login").get_data(as_text=True)).group(1)
        console.post("/login", data={"username": "li", "password": PASSWORD, "csrf_token": token})
        page = console.get("/bookings").get_data(as_text=True)
        assert booking.booking_id in page
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        response = console.post(f"/bookings/{booking.booking_id}/decide",
                                data={"decision": "approved", "reason": "", "csrf_token": token})
        assert response.status_code == 302

        wait_until(lambda: bookings.bookings_of("res-loop")[0].state == "approved", timeout=60,
                   what="the kiosk shows the booking approved")
        wait_until(lambda: count(pg, "SELECT count(*) FROM outgoing_commands WHERE sent_at IS NULL") == 0,
                   what="commands marked sent")
        wait_until(lambda: count(pg, "SELECT count(*) FROM events WHERE type = 'command.reply'") == 2,
                   what="the kiosk's reply to booking.decision back on the platform")
        assert count(pg, "SELECT count(*) FROM bookings WHERE state = 'approved' AND decided_by = 'li'") == 1
    finally:
        controller.stop()
        sender.stop()
