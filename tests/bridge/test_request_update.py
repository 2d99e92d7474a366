"""cmd request.update through the bridge's command router into the community's requests:
validated against the contract, applied once, refused in plain words for an unknown id."""
from __future__ import annotations

import json
import uuid

from cloud_bridge import CommandRouter
from edge.wiring import request_update_handler
from edge.clock import FakeClock
from edge.community import RequestService
from edge.storage import Database


def command(data: dict, transaction_id: str | None = None) -> bytes:
    return json.dumps({"message_id": str(uuid.uuid4()), "type": "request.update",
                       "ts": "2026-11-21T08:30:00.000Z",
                       "transaction_id": transaction_id or str(uuid.uuid4()), "data": data}).encode()


def test_request_update_reaches_the_request_and_bad_ones_are_refused(db: Database, clock: FakeClock) -> None:
    requests = RequestService(db, clock, emergency_callback_minutes=10)
    sent = requests.submit(None, "repair", "楼道灯不亮", "5栋", "13912345678")
    router = CommandRouter(db, clock)
    router.register("request.update", request_update_handler(requests))

    done = router.handle("request.update", command(
        {"request_id": sent.request_id, "status": "done", "reply": "已更换灯泡。", "staff": "王社工"}))
    assert done == {"ok": True, "result": {"request_id": sent.request_id, "status": "done"}}

    unknown = router.handle("request.update", command(
        {"request_id": "nope", "status": "done", "reply": None, "staff": None}))
    assert unknown["ok"] is False and unknown["error"]["code"] == "unknown_request"
    invalid = router.handle("request.update", command(  # "reply" and "staff" are required
        {"request_id": sent.request_id, "status": "received"}))
    assert invalid["ok"] is False and invalid["error"]["code"] == "invalid"
    with db.read() as s:
        from edge.community.models import RequestRow
        row = s.get(RequestRow, sent.request_id)
        assert (row.status, row.reply, row.staff) == ("done", "已更换灯泡。", "王社工")
