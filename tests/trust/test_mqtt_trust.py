"""MQTT trust (issue 9, item 6): broker credentials and per-device ACLs against a real
Mosquitto using deploy/'s example ACL, TLS required for a broker that is not loopback,
Response Topics only inside the device's own reply namespace, integers that are integers."""
from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import select

from cloud_bridge import Bridge, CommandRouter
from cloud_bridge.commands import ping_handler
from cloud_bridge.models import ProcessedCommand
from edge.clock import SystemClock, iso_utc
from edge.settings import SettingsError, load_settings
from edge.storage import Database
from tests.support.bridge import DEVICE, SITE, add_events, edge_settings
from tests.support.station import wait_until
from tests.support.mosquitto import Broker

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(90)]
ROOT = Path(__file__).resolve().parents[2]
DEVICE_USER = f"{SITE}/{DEVICE}"
PREFIX = f"edge/v1/{SITE}/{DEVICE}"


def passwd(path: Path, user: str, password: str) -> None:
    subprocess.run([shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd", "-b", str(path), user,
                    password], check=True, capture_output=True)


@pytest.fixture
def locked_broker(tmp_path: Path):
    """Mosquitto with no anonymous access, a password file, and deploy/'s example ACL."""
    broker = Broker(tmp_path / "broker")
    passwords = tmp_path / "broker" / "passwd"
    passwords.touch()
    for user, password in ((DEVICE_USER, "device-pw"), ("platform", "platform-pw"), (f"{SITE}/kiosk-99", "rogue-pw")):
        passwd(passwords, user, password)
    acl = tmp_path / "broker" / "edge.acl"
    shutil.copy(ROOT / "deploy" / "mosquitto" / "edge.acl.example", acl)
    broker.config.write_text(broker.config.read_text().replace(
        "allow_anonymous true\n", f"allow_anonymous false\npassword_file {passwords}\nacl_file {acl}\n"))
    broker.start()
    yield broker
    broker.stop()


class Peer:
    """A plain MQTT 5 client (the platform, or a rogue device) that records what it receives."""

    def __init__(self, broker: Broker, user: str, password: str, subscribe: str | None = None) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"peer-{uuid.uuid4().hex[:6]}",
                                  protocol=MQTTProtocolVersion.MQTTv5)
        self.client.username_pw_set(user, password)
        self.client.on_message = lambda _c, _u, message: self.messages.append(message)

        def connected(client, _u, _f, reason_code, _p):
            if not reason_code.is_failure:
                if subscribe:
                    client.subscribe(subscribe, qos=1)
                self.ready.set()

        self.client.on_connect = connected
        self.client.on_subscribe = lambda *_: None
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self.ready.wait(10), f"{user} could not connect"

    def command(self, name: str, data: dict, response_topic: str | None = None) -> str:
        transaction_id = str(uuid.uuid4())
        body = {"message_id": str(uuid.uuid4()), "type": name, "ts": iso_utc(SystemClock().now()),
                "transaction_id": transaction_id, "data": data}
        properties = Properties(PacketTypes.PUBLISH)
        if response_topic:
            properties.ResponseTopic = response_topic
        properties.CorrelationData = transaction_id.encode()
        self.client.publish(f"{PREFIX}/cmd/{name}", json.dumps(body), qos=1, properties=properties).wait_for_publish(5)
        return transaction_id

    def on(self, topic_part: str) -> list[dict]:
        return [json.loads(m.payload) for m in list(self.messages) if topic_part in m.topic]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def edge(tmp_path: Path, locked_broker: Broker):
    password_file = tmp_path / "mqtt.password"
    password_file.write_text("device-pw\n")
    settings = edge_settings(tmp_path / "edge", locked_broker, username=DEVICE_USER, password_file=password_file)
    db = Database(settings.database_path)
    db.upgrade()
    router = CommandRouter(db, SystemClock())
    router.register("ping", ping_handler("test"), in_transaction=True)
    bridge = Bridge(settings, db, router, clock=SystemClock(), version="test")
    bridge.start()
    yield bridge, db
    bridge.stop()
    db.dispose()


def processed(db: Database) -> set[str]:
    with db.read() as s:
        return set(s.scalars(select(ProcessedCommand.transaction_id)))


def test_the_edge_logs_in_and_only_the_platform_can_command_it(locked_broker, edge):
    bridge, db = edge
    platform = Peer(locked_broker, "platform", "platform-pw", subscribe="edge/v1/#")
    rogue = Peer(locked_broker, f"{SITE}/kiosk-99", "rogue-pw", subscribe="edge/v1/#")
    try:
        assert bridge.connected.wait(15), locked_broker.log()[-2000:]
        add_events(db, 3)
        wait_until(lambda: len(platform.on("/evt/door.opened")) == 3, timeout=15, what="events at the platform")
        assert rogue.on("/evt/") == []  # another device cannot read this one's events
        forged = rogue.command("ping", {})  # nor command it (the ACL drops the publish)
        legit = platform.command("ping", {})
        wait_until(lambda: any(r.get("transaction_id") == legit for r in platform.on("/reply")),
                   timeout=15, what="the platform's command answered")
        assert processed(db) == {legit} and forged not in processed(db)
    finally:
        platform.stop()
        rogue.stop()


def answered_ping(platform: Peer, timeout: float = 30.0) -> None:
    """Ping until one is answered: a ping sent before the edge's SUBACK is simply not
    delivered, so one ping alone could wait forever."""
    deadline = time.monotonic() + timeout
    sent: set[str] = set()
    while time.monotonic() < deadline:
        sent.add(platform.command("ping", {}))
        try:
            wait_until(lambda: any(r.get("transaction_id") in sent for r in platform.on("/reply")),
                       timeout=1, what="a ping's reply")
            return
        except AssertionError:
            continue
    raise AssertionError("no ping was answered")


def test_a_response_topic_outside_the_reply_namespace_is_refused_on_the_default_topic(locked_broker, edge):
    bridge, db = edge
    platform = Peer(locked_broker, "platform", "platform-pw", subscribe="edge/v1/#")
    try:
        assert bridge.connected.wait(15)
        # One answered ping first: both subscriptions (the edge's commands, the platform's
        # edge/v1/#) are then in place, so the hijack below cannot be lost to a SUBACK race.
        answered_ping(platform)
        hijack = platform.command("ping", {}, response_topic=f"{PREFIX}/evt/parcel.collected")
        own = platform.command("ping", {}, response_topic=f"{PREFIX}/reply/ops-console")
        wait_until(lambda: any(r.get("transaction_id") == own for r in platform.on("/reply/ops-console")),
                   timeout=15, what="the reply on the platform's own sub-topic")
        [refused] = wait_until(lambda: [m for m in platform.messages if m.topic == f"{PREFIX}/reply"
                                        and json.loads(m.payload).get("error", {}).get("code") == "bad_response_topic"],
                               timeout=15, what="the refusal on the default reply topic")
        assert refused.properties.CorrelationData == hijack.encode()
        assert platform.on("/evt/parcel.collected") == []
        assert hijack not in processed(db)  # refused before it ran
    finally:
        platform.stop()


def test_a_wrong_password_gets_no_session(tmp_path, locked_broker):
    password_file = tmp_path / "wrong.password"
    password_file.write_text("not-the-password\n")
    settings = edge_settings(tmp_path / "edge", locked_broker, username=DEVICE_USER, password_file=password_file)
    db = Database(settings.database_path)
    db.upgrade()
    bridge = Bridge(settings, db, CommandRouter(db, SystemClock()), clock=SystemClock(), version="test")
    bridge.start()
    try:
        wait_until(lambda: "not authorised" in locked_broker.log(), timeout=15, what="the broker refusing it")
        assert not bridge.connected.is_set()
    finally:
        bridge.stop()
        db.dispose()


def test_tls_is_required_for_a_broker_that_is_not_loopback(tmp_path):
    with pytest.raises(SettingsError, match="TLS|tls"):
        load_settings(data_dir=tmp_path, mqtt={"host": "mqtt.platform.example"})
    assert load_settings(data_dir=tmp_path, mqtt={"host": "mqtt.platform.example", "tls": True}).mqtt.uses_tls
    assert load_settings(data_dir=tmp_path, mqtt={"host": "mqtt.platform.example",
                                                  "tls_ca": str(tmp_path / "ca.pem")}).mqtt.uses_tls
    plain = load_settings(data_dir=tmp_path, mqtt={"host": "mqtt.platform.example", "insecure_plaintext": True})
    assert not plain.mqtt.uses_tls
    assert not load_settings(data_dir=tmp_path, mqtt={"host": "127.0.0.1"}).mqtt.uses_tls  # loopback: dev


def test_insecure_plaintext_is_a_warning_at_every_start(tmp_path, capfd):
    from edge.cli import _warn_if_plaintext_broker
    from edge.logs import configure_logging

    configure_logging()
    settings = load_settings(data_dir=tmp_path, mqtt={"host": "mqtt.platform.example", "insecure_plaintext": True})
    _warn_if_plaintext_broker(settings)
    assert "mqtt_insecure_plaintext" in capfd.readouterr().err
    _warn_if_plaintext_broker(load_settings(data_dir=tmp_path, mqtt={"host": "mqtt.platform.example", "tls": True}))
    assert "mqtt_insecure_plaintext" not in capfd.readouterr().err


def test_compartment_3_0_is_not_an_integer(controller, sim):
    router = controller.services.bridge._router  # the controller's own command router
    clock = controller.clock

    def open_command(compartment: object) -> bytes:
        return json.dumps({"message_id": str(uuid.uuid4()), "type": "locker.open", "ts": iso_utc(clock.now()),
                           "transaction_id": str(uuid.uuid4()),
                           "data": {"compartment": compartment, "operator": "ops", "reason": "test"}}).encode()

    for fake_integer in (3.0, True, "3"):
        outcome = router.handle("locker.open", open_command(fake_integer))
        assert outcome["ok"] is False and outcome["error"]["code"] == "invalid", fake_integer
    assert not any(f.data[2] == 0x31 for f in sim.frames_received)
    assert router.handle("locker.open", open_command(3))["ok"] is True
