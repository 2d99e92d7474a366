"""The MQTT side of the metrics, against a real Mosquitto: the link's state, the last
PUBACK, commands by name and result, and the health summary in the retained status."""
from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge.kiosk_ui import create_app
from tests.support.bridge import DEVICE, SITE, device_log
from tests.support.station import wait_until

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(90)]
EDGE = (SITE, DEVICE)


def metric(client, name: str, **labels: str) -> float | None:
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def test_link_pubacks_commands_and_the_health_in_the_status(controller, cloud, broker):
    client = create_app(controller).test_client()
    assert cloud.wait_for(lambda: (device_log(cloud).status or {}).get("data", {}).get("online") is True, 30)
    assert metric(client, "edge_mqtt_connected") == 1
    pings = metric(client, "edge_commands_total", command="ping", result="ok") or 0
    unknown = metric(client, "edge_commands_total", command="no.such.command") or 0

    ping = cloud.send_command(EDGE, "ping", {})
    assert cloud.wait_reply(ping)[0]["ok"] is True
    refused = cloud.send_command(EDGE, "no.such.command", {})
    assert cloud.wait_reply(refused)[0]["ok"] is False
    assert metric(client, "edge_commands_total", command="ping", result="ok") == pings + 1
    assert metric(client, "edge_commands_total", command="no.such.command") == unknown + 1
    # The replies went out and came back acknowledged: the PUBACK clock started.
    since = wait_until(lambda: metric(client, "edge_mqtt_seconds_since_last_puback") is not None
                       and [metric(client, "edge_mqtt_seconds_since_last_puback")], what="a PUBACK")[0]
    assert 0 <= since < 60
    wait_until(lambda: metric(client, "edge_outbox_pending_events") == 0, timeout=30, what="outbox drained")

    health = device_log(cloud).status["data"]["health"]
    assert health["doors_fault"] == 0 and health["disk_free_mb"] > 0 and "outbox_pending" in health
    assert cloud.violations == []  # the status with its health conforms to the contract

    broker.stop()
    wait_until(lambda: metric(client, "edge_mqtt_connected") == 0, timeout=30, what="link down")
