"""paho-mqtt clients of the platform (MQTT 5, persistent sessions) and the command
envelope it sends to stations (contract: transaction_id, expires_at)."""
from __future__ import annotations

import json
import ssl
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleet.settings import FleetMqttSettings


def new_client(settings: FleetMqttSettings, client_id: str, *, manual_ack: bool = False) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=MQTTProtocolVersion.MQTTv5, manual_ack=manual_ack)
    client.suppress_exceptions = True
    if settings.username:
        client.username_pw_set(settings.username,
                               settings.password.get_secret_value() if settings.password else None)
    if settings.tls_ca or settings.tls_cert:
        client.tls_set(ca_certs=str(settings.tls_ca) if settings.tls_ca else None,
                       certfile=str(settings.tls_cert) if settings.tls_cert else None,
                       keyfile=str(settings.tls_key) if settings.tls_key else None,
                       cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    return client


def connect_properties(session_expiry_s: int, receive_maximum: int | None = None) -> Properties:
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = session_expiry_s
    if receive_maximum is not None:
        properties.ReceiveMaximum = receive_maximum
    return properties


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def command_topic(site_id: str, device_id: str, name: str) -> str:
    return f"edge/v1/{site_id}/{device_id}/cmd/{name}"


def command(name: str, data: dict[str, Any], *, site_id: str, device_id: str, transaction_id: str,
            now: datetime, expires_in: timedelta) -> tuple[str, bytes]:
    """(topic, payload) of a command in the contract's envelope (schemas/command.json)."""
    body = {"message_id": str(uuid.uuid4()), "type": name, "ts": iso(now), "site_id": site_id,
            "device_id": device_id, "transaction_id": transaction_id,
            "expires_at": iso(now + expires_in), "data": data}
    return command_topic(site_id, device_id, name), json.dumps(body, ensure_ascii=False).encode()
