"""The controller as a real `python -m edge run` process on the test's simulator (for kill -9,
file modes and anything that needs the whole process), and a small JSON HTTP helper."""
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

from tests.support.platform import PLATFORM_PUBLIC_KEY
from tests.support.ports import free_port
from tests.support.station import COURIER_CODE, COURIER_ID

ROOT = Path(__file__).resolve().parents[2]  # the repository


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
