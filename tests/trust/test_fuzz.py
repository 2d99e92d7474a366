"""Property tests (issue 9): generated input against the local HTTP API and the MQTT command
handler, a bounded number of examples each: never a 500 or an unhandled error, never a door
opened, never the plaintext pickup code in the outbox or the log."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud_bridge import contract
from cloud_bridge.bridge import _route_of
from edge.logs import configure_logging
from edge.storage import OutboxEvent
from tests.support.station import deposit_parcel

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
fields = st.sampled_from(["compartment", "who", "code", "token", "waybill", "phone", "size", "board",
                          "action", "transaction_id", "type", "data"])
bodies = st.one_of(
    st.dictionaries(fields, json_values, max_size=5).map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=200),
    st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth),
)
API_PATHS = ["/api/diag/open", "/api/diag/clear-fault", "/api/diag/events", "/api/locker/pickup",
             "/api/locker/pickup/token", "/api/locker/courier/login", "/api/locker/deposits",
             "/api/locker/returns", "/api/sim/lockboard/door", "/api/locker/compartments",
             "/pickup/code", "/live/scanner"]


def unlock_frames(sim) -> int:
    return sum(1 for f in sim.frames_received if f.data[2] == 0x31)


@pytest.fixture
def stored(controller, client, courier, sim, capfd):
    """One parcel in the locker; its code is what must never show up."""
    configure_logging("DEBUG")
    _, deposited = deposit_parcel(controller, client, courier, sim)
    return deposited, unlock_frames(sim)


def assert_no_secret_anywhere(controller, capfd, deposited) -> None:
    with controller.db.read() as s:
        rows = [json.dumps(e.data) for e in s.query(OutboxEvent)]
    output = capfd.readouterr()
    for secret in (deposited["pickup_code"], deposited["pickup_token"]):
        assert all(secret not in row for row in rows)
        assert secret not in output.out + output.err


def test_the_local_api_under_generated_requests(controller, client, sim, capfd, stored):
    deposited, doors_before = stored
    anonymous = client.application.test_client()  # no credential: any local user

    @FUZZ
    @given(path=st.sampled_from(API_PATHS), body=bodies,
           content_type=st.sampled_from(["application/json", "application/merge-patch+json", "text/plain", ""]),
           host=st.sampled_from(["127.0.0.1", "localhost:8080", "evil.example", "127.0.0.1.nip.io"]),
           method=st.sampled_from(["POST", "PUT", "GET"]))
    def request(path, body, content_type, host, method):
        reply = anonymous.open(path, method=method, data=body.encode("utf-8", "surrogatepass"),
                               content_type=content_type or None, headers={"Host": host})
        assert reply.status_code < 500, (path, body[:200], reply.status_code)

    request()
    assert unlock_frames(sim) == doors_before
    assert_no_secret_anywhere(controller, capfd, deposited)


def test_the_pickup_api_with_the_credential_under_generated_codes(controller, client, sim, capfd, stored):
    deposited, doors_before = stored

    @FUZZ
    @given(code=st.one_of(st.text(max_size=12), st.from_regex(r"\A[0-9٠-٩０-９]{8}\Z"), json_values),
           path=st.sampled_from(["/api/locker/pickup", "/api/locker/pickup/token"]))
    def pickup(code, path):
        if code == deposited["pickup_code"]:
            return
        reply = client.post(path, json={"code": code, "token": code})
        assert reply.status_code < 500, (code, reply.status_code)

    pickup()
    assert unlock_frames(sim) == doors_before
    assert_no_secret_anywhere(controller, capfd, deposited)


def test_the_command_handler_under_generated_commands(controller, sim, capfd, stored):
    deposited, doors_before = stored
    router = controller.services.bridge._router  # the handler the bridge feeds, in-process
    names = st.sampled_from([*contract.command_names(), "nope", "locker.open/../x", ""])
    envelopes = st.fixed_dictionaries({"message_id": st.text(max_size=8), "type": st.text(max_size=12),
                                       "ts": st.text(max_size=8), "transaction_id": st.text(max_size=8),
                                       "data": json_values}).map(json.dumps)
    payloads = st.one_of(bodies, envelopes).map(lambda text: text.encode("utf-8", "surrogatepass")) | st.binary(max_size=64)
    reply_topic = controller.services.bridge.topics.reply
    topics = st.one_of(st.none(), st.text(max_size=40), st.text(max_size=12).map(f"{reply_topic}/".__add__),
                       st.sampled_from([f"{reply_topic[:-len('reply')]}evt/parcel.collected", "#", "a/+/b"]))

    @FUZZ
    @given(name=names, payload=payloads, topic=topics, correlation=st.none() | st.binary(min_size=1, max_size=16))
    def handle(name, payload, topic, correlation):
        message = mqtt.MQTTMessage(topic=f"{reply_topic[:-len('reply')]}cmd/{name}".encode())
        message.payload = payload
        message.properties = Properties(PacketTypes.PUBLISH)
        if topic:
            message.properties.ResponseTopic = topic
        if correlation:
            message.properties.CorrelationData = correlation
        outcome = router.handle(name, payload, _route_of(message, reply_topic))  # as the bridge does
        assert outcome["ok"] is False  # nothing generated is a valid, authorised command
        assert outcome["error"]["code"] != "internal"

    handle()
    assert unlock_frames(sim) == doors_before
    assert_no_secret_anywhere(controller, capfd, deposited)
