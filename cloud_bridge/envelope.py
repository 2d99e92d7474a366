"""Every message the box sends has one envelope (cloud_bridge/contract/asyncapi.yaml):
message_id, type, ts, site_id, device_id, data; outbox rows add seq, replies add the
command's transaction_id, command, ok and error. This module is the one place that builds it.

Events are the hot path (ADR 0037): their payload is joined as text around the JSON the
outbox already stores, never decoded and encoded again.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from edge.clock import iso_utc


def wire_ts(stored: str) -> str:
    """The outbox's 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC) as the wire's millisecond ISO form."""
    return f"{stored[:10]}T{stored[11:23]}Z"


class Envelopes:
    """Envelopes for one box (site and device)."""

    def __init__(self, site_id: str, device_id: str) -> None:
        self._head = {"site_id": site_id, "device_id": device_id}
        self._event_tail = f',"site_id":{json.dumps(site_id)},"device_id":{json.dumps(device_id)},"data":'

    def event(self, message_id: str, seq: int, type_: str, stored_ts: str, data_json: str) -> str:
        """An outbox event, its stored JSON data placed as it is."""
        return (f'{{"message_id":"{message_id}","seq":{seq},"type":{json.dumps(type_)},'
                f'"ts":"{wire_ts(stored_ts)}"{self._event_tail}{data_json}}}')

    def reply(self, message_id: str, seq: int, type_: str, stored_ts: str, body_json: str) -> str:
        """A command reply from the outbox: its stored body's `result` becomes `data`, the
        rest (transaction_id, command, ok, error) sits beside it in the envelope."""
        body = json.loads(body_json)
        result = body.pop("result", {})
        envelope = {"message_id": message_id, "seq": seq, "type": type_, "ts": wire_ts(stored_ts),
                    **self._head, **body, "data": result}
        return json.dumps(envelope, ensure_ascii=False)

    def message(self, type_: str, at: datetime, data: Any) -> str:
        """A message outside the outbox (status, the compartments snapshot): no seq."""
        return json.dumps({"message_id": str(uuid.uuid4()), "type": type_, "ts": iso_utc(at),
                           **self._head, "data": data}, ensure_ascii=False)
