"""kill -9 during a deposit: the real `python -m edge run` process, a simulator the test
owns on a PTY, the door closed on an item while the controller is dead. After a restart,
reconcile completes the deposit and the outbox has every event with no gap in seq."""
from __future__ import annotations

import pytest

from edge.storage import Database
from tests.support.platform import revealed
from tests.support.process import ControllerProcess, http
from tests.support.station import outbox

pytestmark = pytest.mark.timeout(90)
def test_kill_9_with_the_door_open_loses_nothing(tmp_path, sim):
    data_dir = tmp_path / "data"
    controller = ControllerProcess(data_dir, sim.url).start()
    try:
        token = controller.login()
        status, deposit = http(controller.port, "POST", "/api/locker/deposits",
                               {"waybill": "SF-KILL-9", "phone": "13912345678", "size": "M"}, token)
        assert status == 201 and deposit["state"] == "door_open", deposit
        number = deposit["compartment"]
        board, lock = (number - 1) // 16, (number - 1) % 16
        assert sim.is_open(board, lock)
        controller.kill9()

        sim.set_item(board, lock, True)
        sim.close_door(board, lock)  # the courier finishes while the controller is dead

        controller.start()
        token = controller.login()
        status, after = http(controller.port, "GET", f"/api/locker/deposits/{deposit['deposit_id']}", token=token)
        assert status == 200 and after["state"] == "deposited", after
    finally:
        controller.stop()

    db = Database(data_dir / "edge.sqlite3")
    try:
        events = outbox(db)
        seqs = [e.seq for e in events]
        assert seqs == list(range(1, len(seqs) + 1))
        mine = [(e.type, e.data.get("compartment")) for e in events if e.type.startswith(("door.", "parcel."))]
        assert mine == [("door.opened", number), ("door.closed", number), ("parcel.deposited", number)]
        [reconciled] = [e for e in events if e.type == "locker.reconciled"]
        assert {"finding": "deposit_after_restart", "compartment": number, "deposit_id": deposit["deposit_id"],
                "was": "door_open", "now": "deposited"} in reconciled.data["findings"]
        code = revealed(outbox(db, "parcel.deposited")[0])["pickup_code"]
        assert len(code) == 8 and code not in controller.log.read_text()  # never logged
    finally:
        db.dispose()
