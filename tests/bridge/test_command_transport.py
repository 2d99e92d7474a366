"""Commands over a real Mosquitto: replies on the Response Topic with the Correlation Data
echoed, commands kept for an edge that is away, and a fuzzing cloud that cannot crash it."""
from __future__ import annotations

import random
from datetime import timedelta

import pytest

from cloud_bridge import CommandRouter
from cloud_bridge.commands import ping_handler
from edge.clock import SystemClock
from tests.support.bridge import DEVICE, SITE, device_log

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(60)]
EDGE = (SITE, DEVICE)


def start_online(make_bridge, router, cloud):
    """A bridge whose subscription is in place: its status is published after it subscribes."""
    bridge = make_bridge(router)
    assert cloud.wait_for(lambda: (device_log(cloud).status or {}).get("data", {}).get("online") is True)
    return bridge


@pytest.fixture
def router(edge_db):
    router = CommandRouter(edge_db, SystemClock())
    router.register("ping", ping_handler("9.9.9"), in_transaction=True)
    return router


def test_reply_goes_to_the_response_topic_with_correlation_data(cloud, make_bridge, router):
    start_online(make_bridge, router, cloud)
    transaction_id = cloud.send_command(EDGE, "ping", {}, correlation=b"\x00corr\xff")
    [reply] = cloud.wait_reply(transaction_id)
    assert reply["ok"] is True and reply["data"]["version"] == "9.9.9"
    assert cloud.reply_correlations[transaction_id] == [b"\x00corr\xff"]
    assert cloud.violations == []


def test_every_fault_gets_an_error_reply_over_the_wire(cloud, make_bridge, router):
    start_online(make_bridge, router, cloud)
    expired = cloud.send_command(EDGE, "ping", {}, expires_in=timedelta(seconds=-1))
    unknown = cloud.send_command(EDGE, "locker.explode", {})
    invalid = cloud.send_command(EDGE, "ping", {"unexpected": 1})
    assert cloud.wait_reply(expired)[0]["error"]["code"] == "expired"
    assert cloud.wait_reply(unknown)[0]["error"]["code"] == "unknown_command"
    assert cloud.wait_reply(invalid)[0]["error"]["code"] == "invalid"
    cloud.send_command(EDGE, "ping", None, raw=b"{ nope")
    assert cloud.wait_for(lambda: any(r["error"]["code"] == "malformed" for r in cloud.unmatched_replies))
    repeated = cloud.send_command(EDGE, "ping", {})
    cloud.send_command(EDGE, "ping", {}, transaction_id=repeated)
    first, second = cloud.wait_reply(repeated, count=2)
    assert second["duplicate"] is True and second["data"] == first["data"]
    assert cloud.violations == []


def test_commands_sent_while_the_edge_is_away_are_run_when_it_returns(cloud, make_bridge, router):
    bridge = start_online(make_bridge, router, cloud)
    bridge.stop()  # the persistent session keeps its subscription
    transaction_id = cloud.send_command(EDGE, "ping", {})
    make_bridge(router)
    assert cloud.wait_reply(transaction_id)[0]["ok"] is True


def test_a_fuzzing_cloud_cannot_crash_the_edge(cloud, make_bridge, router):
    bridge = start_online(make_bridge, router, cloud)
    rng = random.Random(7)
    for _ in range(200):
        cloud.send_command(EDGE, rng.choice(["ping", "config.set", "x", "a/b/c"]), None,
                           raw=bytes(rng.randrange(256) for _ in range(rng.randrange(64))))
    transaction_id = cloud.send_command(EDGE, "ping", {})
    assert cloud.wait_reply(transaction_id, timeout=30)[0]["ok"] is True
    assert bridge.connected.is_set()
    assert cloud.wait_for(lambda: len(cloud.unmatched_replies) == 200, 30)
    assert device_log(cloud).gaps() == [] and cloud.violations == []


def test_the_simulated_cloud_sends_its_catalogue_to_an_edge_that_comes_online(broker, edge_db):
    from simulators.cloud import CloudSimulator, load_catalogue

    received: list[dict] = []
    router = CommandRouter(edge_db, SystemClock())
    router.register("catalogue.sync", lambda data: received.append(data) or {"services": len(data["services"])})
    catalogue = load_catalogue(None, SITE)
    sender = CloudSimulator(broker.host, broker.port, catalogue=catalogue).start()
    try:
        assert sender.connected.wait(10)
        from cloud_bridge import Bridge
        from tests.support.bridge import edge_settings

        settings = edge_settings(edge_db.path.parent, broker)
        bridge = Bridge(settings, edge_db, router, clock=SystemClock(), version="t")
        bridge.start()
        try:
            assert sender.wait_for(lambda: any(r[0]["command"] == "catalogue.sync" and r[0]["ok"]
                                               for r in sender.replies.values()), 20)
            assert received == [catalogue]
        finally:
            bridge.stop()
    finally:
        sender.stop()
