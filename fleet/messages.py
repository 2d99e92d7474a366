"""Parsing what stations publish (topics and envelopes of the contract) into plain records.
Anything that does not parse is a Rejected with a reason: it is stored as such, never lost."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

TOPIC_ROOT = "edge/v1"
REPLY_TYPE = "command.reply"  # replies go through the edge's outbox: they are in the seq stream


@dataclass(frozen=True)
class Event:
    site_id: str
    device_id: str
    seq: int
    message_id: str
    type: str
    ts: datetime
    data: dict[str, Any]
    body: str  # data as JSON text, stored as received


@dataclass(frozen=True)
class Snapshot:
    """A retained status (online flag) or compartments snapshot."""
    kind: str  # "status" | "compartments"
    site_id: str
    device_id: str
    ts: datetime
    payload: dict[str, Any]


@dataclass(frozen=True)
class Rejected:
    topic: str
    payload: bytes
    reason: str


Parsed = Event | Snapshot | Rejected


def parse(topic: str, payload: bytes) -> Parsed:
    parts = topic.split("/")
    if len(parts) < 5 or "/".join(parts[:2]) != TOPIC_ROOT:
        return Rejected(topic, payload, "topic outside edge/v1/{site}/{device}/...")
    site_id, device_id, rest = parts[2], parts[3], parts[4:]
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return Rejected(topic, payload, "payload is not UTF-8 JSON")
    if not isinstance(body, dict):
        return Rejected(topic, payload, "payload is not a JSON object")
    try:
        if rest[0] == "evt" and len(rest) == 2:
            return _event(site_id, device_id, rest[1], body)
        if rest[0] == "reply":
            return _event(site_id, device_id, REPLY_TYPE, body)
        if rest == ["status"]:
            return Snapshot("status", site_id, device_id, _ts(body), body)
        if rest == ["state", "compartments"]:
            return Snapshot("compartments", site_id, device_id, _ts(body), body)
    except (KeyError, TypeError, ValueError) as exc:
        return Rejected(topic, payload, f"bad envelope: {exc}")
    return Rejected(topic, payload, "not an event, status or compartments topic")


def _event(site_id: str, device_id: str, topic_type: str, body: dict[str, Any]) -> Event:
    seq = body["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError("seq must be an integer >= 1")
    if body.get("type") != topic_type:
        raise ValueError("type differs from the topic")
    if body.get("site_id", site_id) != site_id or body.get("device_id", device_id) != device_id:
        raise ValueError("site_id/device_id differ from the topic")
    data = body["data"]
    if not isinstance(data, dict):
        raise ValueError("data must be an object")
    message_id = str(uuid.UUID(str(body["message_id"])))
    return Event(site_id, device_id, seq, message_id, topic_type, _ts(body), data,
                 json.dumps(data, ensure_ascii=False, separators=(",", ":")))


def _ts(body: dict[str, Any]) -> datetime:
    moment = datetime.fromisoformat(str(body["ts"]))
    if moment.tzinfo is None:
        raise ValueError("ts must carry a time zone (…Z)")
    return moment
