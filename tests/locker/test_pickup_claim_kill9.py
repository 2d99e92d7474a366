"""kill -9 on the resident's path (ADR 0137): the real `python -m edge run` process, a
simulator the test owns on a PTY. A pickup by code is claimed (attempt, audit row, pickup
in state `opening`) before its unlock frame goes out; the process is killed after that claim,
once before the door opened and once after it opened but before the result was recorded.
After a restart the claim is still there, reconcile settles it from what the board reads,
and the parcel is collected exactly once."""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from edge.storage import Database
from tests.support.platform import revealed
from tests.support.process import ControllerProcess, http
from tests.support.station import outbox
from tests.support.wait import wait_until

pytestmark = pytest.mark.timeout(120)


def rows(data_dir: Path, sql: str, *args: object) -> list[tuple]:
    """A query on the controller's database from outside the process (it may be running)."""
    connection = sqlite3.connect(data_dir / "edge.sqlite3")
    try:
        return connection.execute(sql, args).fetchall()
    finally:
        connection.close()


def stored_parcel(controller: ControllerProcess, sim, data_dir: Path) -> tuple[int, str, str]:
    """A courier deposits a parcel and shuts the door on it: (compartment, parcel id, code)."""
    token = controller.login()
    status, deposit = http(controller.port, "POST", "/api/locker/deposits",
                           {"waybill": "SF-CLAIM-9", "phone": "13912345678", "size": "M"}, token)
    assert status == 201 and deposit["state"] == "door_open", deposit
    number = deposit["compartment"]
    board, lock = (number - 1) // 16, (number - 1) % 16
    sim.set_item(board, lock, True)
    sim.close_door(board, lock)
    wait_until(lambda: rows(data_dir, "SELECT 1 FROM locker_parcel WHERE deposit_id = ? AND state = 'stored'",
                            deposit["deposit_id"]), 10, "the parcel stored")
    db = Database(data_dir / "edge.sqlite3")
    try:
        event = outbox(db, "parcel.deposited")[0]
    finally:
        db.dispose()
    return number, event.data["parcel_id"], revealed(event)["pickup_code"]


def pickup_in_background(controller: ControllerProcess, code: str) -> threading.Thread:
    """POST the code; the call never gets its answer (the process is killed meanwhile)."""
    api_token = (controller.env_data_dir / "api.token").read_text().strip()

    def call() -> None:
        try:
            http(controller.port, "POST", "/api/locker/pickup", {"code": code}, api_token)
        except (OSError, ValueError):
            pass  # the connection dies with the process

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread


def claimed(data_dir: Path, parcel_id: str) -> list[tuple]:
    return rows(data_dir, "SELECT id, state FROM locker_door_op WHERE parcel_id = ?", parcel_id)


def collect(controller: ControllerProcess, sim, number: int, data_dir: Path, parcel_id: str) -> None:
    """The resident takes the parcel out and shuts the door; the controller records it."""
    board, lock = (number - 1) // 16, (number - 1) % 16
    sim.set_item(board, lock, False)
    sim.close_door(board, lock)
    wait_until(lambda: rows(data_dir, "SELECT 1 FROM locker_parcel WHERE id = ? AND state = 'collected'",
                            parcel_id), 10, "the parcel collected")


def check_records(data_dir: Path, parcel_id: str, number: int, latch_at_start: str) -> list:
    """After the run: seq has no gap, the parcel left once, every accepted code attempt kept,
    and the restart's reconcile reported the pickup it found."""
    db = Database(data_dir / "edge.sqlite3")
    try:
        events = outbox(db)
    finally:
        db.dispose()
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.data["parcel_id"] for e in events if e.type == "parcel.collected"] == [parcel_id]
    accepted = rows(data_dir, "SELECT detail FROM audit WHERE action = 'pickup_code' AND result = 'accepted' "
                              "AND target = ?", parcel_id)
    assert rows(data_dir, "SELECT count(*) FROM locker_code_attempt WHERE ok = 1") == [(len(accepted),)]
    reconciled = [e for e in events if e.type == "locker.reconciled"][-1]
    assert {"finding": "pickup_after_restart", "compartment": number,
            "latch": latch_at_start} in reconciled.data["findings"]
    return accepted


def test_killed_after_the_claim_before_the_door_opened(tmp_path, sim):
    data_dir = tmp_path / "data"
    controller = ControllerProcess(data_dir, sim.url)
    controller.env["EDGE_LOCKER__REPLY_TIMEOUT_S"] = "5"  # a silent board keeps the call waiting
    controller.start()
    try:
        number, parcel_id, code = stored_parcel(controller, sim, data_dir)
        board, lock = (number - 1) // 16, (number - 1) % 16
        sim.set_offline(board)  # the unlock frame is not acted on and nothing answers
        caller = pickup_in_background(controller, code)
        [(pickup_id, state)] = wait_until(lambda: claimed(data_dir, parcel_id), 10, "the claim committed")
        assert state == "opening"
        controller.kill9()
        caller.join(10)
        assert not sim.is_open(board, lock)
        # The claim survived the kill: the accepted attempt, its audit row and the pickup.
        assert claimed(data_dir, parcel_id) == [(pickup_id, "opening")]
        assert rows(data_dir, "SELECT count(*) FROM audit WHERE action = 'pickup_code' AND result = 'accepted' "
                              "AND target = ?", parcel_id) == [(1,)]

        sim.set_offline(board, False)
        controller.start()
        api_token = (data_dir / "api.token").read_text().strip()
        status, before = http(controller.port, "GET", f"/api/locker/pickups/{pickup_id}", token=api_token)
        assert status == 200 and before["state"] == "not_opened", before  # found shut on the parcel
        assert rows(data_dir, "SELECT state FROM locker_parcel WHERE id = ?", parcel_id) == [("stored",)]

        status, again = http(controller.port, "POST", "/api/locker/pickup", {"code": code}, api_token)
        assert status == 200 and again["state"] == "door_open", again  # the code still works, once
        assert again["pickup_id"] != pickup_id and sim.is_open(board, lock)
        collect(controller, sim, number, data_dir, parcel_id)
    finally:
        controller.stop()

    assert sorted(claimed(data_dir, parcel_id)) == sorted([(pickup_id, "not_opened"), (again["pickup_id"], "collected")])
    assert len(check_records(data_dir, parcel_id, number, "closed")) == 2
    # The door opened once, for the second claim; the first is recorded as not opened.
    openings = rows(data_dir, "SELECT actor, result FROM audit WHERE action = 'door_open' AND target = ?",
                    f"compartment:{number}")
    assert openings.count(("resident", "opened")) == 1 and ("system", "failed") in openings
    assert code not in controller.log.read_text()  # never logged


def test_killed_after_the_door_opened_before_it_was_recorded(tmp_path, sim):
    data_dir = tmp_path / "data"
    controller = ControllerProcess(data_dir, sim.url)
    controller.env["EDGE_LOCKER__REPLY_TIMEOUT_S"] = "5"
    controller.start()
    try:
        number, parcel_id, code = stored_parcel(controller, sim, data_dir)
        board, lock = (number - 1) // 16, (number - 1) % 16
        sim.set_reply_delay(3.0)  # the latch moves at once; the status read confirming it waits
        caller = pickup_in_background(controller, code)
        wait_until(lambda: sim.is_open(board, lock), 15, "the door open")
        [(pickup_id, state)] = claimed(data_dir, parcel_id)
        assert state == "opening"  # open, and not yet recorded as open
        controller.kill9()
        caller.join(10)
        sim.set_reply_delay(0)
        sim.wait_idle(10)  # the dead process's last requests answered before the restart

        controller.start()
        api_token = (data_dir / "api.token").read_text().strip()
        status, after = http(controller.port, "GET", f"/api/locker/pickups/{pickup_id}", token=api_token)
        assert status == 200 and after["state"] == "door_open", after  # found open: the pickup goes on
        status, retyped = http(controller.port, "POST", "/api/locker/pickup", {"code": code}, api_token)
        assert status == 403, retyped  # no second opening for the same parcel
        collect(controller, sim, number, data_dir, parcel_id)
    finally:
        controller.stop()

    assert claimed(data_dir, parcel_id) == [(pickup_id, "collected")]
    assert len(check_records(data_dir, parcel_id, number, "open")) == 1
    openings = rows(data_dir, "SELECT actor, result FROM audit WHERE action = 'door_open' AND target = ?",
                    f"compartment:{number}")
    assert ("system", "opened") in openings and ("resident", "opened") not in openings
