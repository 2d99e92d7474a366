"""kill -9 during a deposit: the real `python -m edge run` process, a simulator the test
owns on a PTY, the door closed on an item while the controller is dead. After a restart,
reconcile completes the deposit and the outbox has every event with no gap in seq."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from edge.storage import Database
from tests.locker.conftest import COURIER_CODE, COURIER_ID, outbox
from tests.support.ports import free_port
from tests.support.platform import PLATFORM_PUBLIC_KEY, revealed

pytestmark = pytest.mark.timeout(90)
ROOT = Path(__file__).resolve().parents[2]


def http(port: int, method: str, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, headers=headers,
                                     data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


class ControllerProcess:
    def __init__(self, data_dir: Path, serial_url: str) -> None:
        self.port = free_port()
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("EDGE_")},
                    "EDGE_DATA_DIR": str(data_dir), "EDGE_LOCKER__SERIAL_URL": serial_url,
                    "EDGE_LOCKER__BOARDS": "0,1", "EDGE_LOCKER__POLL_INTERVAL_S": "0.02",
                    "EDGE_LOCKER__COURIERS": json.dumps({COURIER_CODE: COURIER_ID}),
                    "EDGE_HTTP__PORT": str(self.port), "PYTHONUNBUFFERED": "1",
                    "EDGE_MQTT__PLATFORM_PUBLIC_KEY": PLATFORM_PUBLIC_KEY}
        self.log = data_dir.parent / "controller.log"
        self.env_data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "ControllerProcess":
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "edge", "run"], cwd=ROOT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"controller exited: {self.log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"controller not ready: {self.log.read_text()[-3000:]}")

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def login(self) -> str:
        api_token = (self.env_data_dir / "api.token").read_text().strip()  # the local API credential
        status, body = http(self.port, "POST", "/api/locker/courier/login", {"code": COURIER_CODE}, api_token)
        assert status == 200, body
        return body["token"]


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
