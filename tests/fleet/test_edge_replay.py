"""Gap -> outbox.replay -> closed, with a real edge controller (the tests' harness) on one
side and a fleet ingest worker on the other."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from edge.app import build_controller
from edge.storage import record_event
from tests.support.bridge import DEVICE, edge_settings
from tests.support.fleet import count, wait_until

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(120)]


def published(controller) -> int:  # noqa: ANN001
    with controller.db.read() as session:
        return session.execute(text("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")).scalar_one()


def add_events(controller, n: int) -> None:  # noqa: ANN001
    with controller.db.write() as session:
        for i in range(n):
            record_event(session, "door.opened", {"compartment": i % 32 + 1})


def test_events_published_before_the_platform_subscribed_are_replayed_and_the_gap_closes(
        tmp_path, broker, fleet_settings, pg, start_worker) -> None:
    settings = edge_settings(tmp_path / "edge", broker)
    settings.simulate = True  # simulated lock boards; the broker is the test's
    controller = build_controller(settings)
    controller.start()
    try:
        # No platform session exists yet: the broker acknowledges these and drops them.
        wait_until(lambda: controller.services.bridge.connected.is_set(), what="edge online")
        add_events(controller, 5)
        wait_until(lambda: published(controller) >= 5, what="first events published")
        before = published(controller)

        start_worker(0)
        add_events(controller, 3)
        wait_until(lambda: count(pg, "SELECT count(*) FROM gaps WHERE device_id = %s", DEVICE) == 1,
                   what="the gap detected")
        assert count(pg, "SELECT from_seq FROM gaps") == 1
        assert count(pg, "SELECT to_seq FROM gaps") >= before  # every event of the unsubscribed time
        # The worker asks for the range; the edge publishes it again; the gap closes.
        wait_until(lambda: count(pg, "SELECT count(*) FROM gaps WHERE closed_at IS NOT NULL") == 1,
                   timeout=60, what="the gap closed by the replay")
        # Every seq up to the newest (the replay's own reply included) stored once, no hole.
        wait_until(lambda: count(pg, "SELECT count(*) FROM devices dv WHERE dv.device_id = %s "
                                     "AND dv.watermark = dv.max_seq AND dv.max_seq = (SELECT count(*) FROM events e "
                                     "WHERE e.device_id = dv.device_id) AND EXISTS (SELECT 1 FROM events e "
                                     "WHERE e.device_id = dv.device_id AND e.type = 'command.reply')", DEVICE) == 1,
                   what="watermark at the newest seq, the replay's reply stored")
        assert count(pg, "SELECT count(DISTINCT message_id) FROM events") == count(pg, "SELECT count(*) FROM events")
        assert count(pg, "SELECT count(*) FROM devices WHERE online AND compartments IS NOT NULL") == 1
    finally:
        controller.stop()
