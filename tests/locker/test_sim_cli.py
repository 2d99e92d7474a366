"""`edge sim lockboard`: the standalone simulator a person drives from a console."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.drivers.lockboard import Latch, open_lockboard_bus

pytestmark = pytest.mark.timeout(30)
ROOT = Path(__file__).resolve().parents[2]


def test_edge_sim_lockboard_serves_the_real_driver_and_takes_console_commands():
    process = subprocess.Popen([sys.executable, "-m", "edge", "sim", "lockboard", "--boards", "0", "--tcp", "0"],
                               cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("socket://127.0.0.1:")
        process.stdin.write("open 0 4\n")
        process.stdin.flush()
        assert process.stdout.readline().strip() == "ok"
        bus = open_lockboard_bus(url, boards=[0], reply_timeout_s=0.2)
        try:
            status = bus.read_board(0)
            assert status.reachable and status.locks[4].latch is Latch.OPEN and status.locks[3].latch is Latch.CLOSED
        finally:
            bus.close()
        process.stdin.write("bogus\n")
        process.stdin.flush()
        assert process.stdout.readline().startswith("error:")
    finally:
        process.terminate()
        process.wait(5)


def test_bad_boards_option_is_one_clear_line():
    result = subprocess.run([sys.executable, "-m", "edge", "sim", "lockboard", "--boards", "a,b"],
                            cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert result.returncode == 2 and "--boards" in result.stderr


def test_edge_run_refuses_a_serial_url_no_port_can_take(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "EDGE_DATA_DIR": str(tmp_path), "EDGE_LOCKER__SERIAL_URL": "foo://bar"}
    result = subprocess.run([sys.executable, "-m", "edge", "run"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "bad setting locker.serial_url" in result.stderr and "Traceback" not in result.stderr


def test_a_second_controller_cannot_take_the_bus(tmp_path, controller):
    env = {"PATH": "/usr/bin:/bin", "EDGE_DATA_DIR": str(controller.settings.data_dir),
           "EDGE_LOCKER__SERIAL_URL": controller.settings.locker.serial_url}
    result = subprocess.run([sys.executable, "-m", "edge", "run"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "in use by another process" in result.stderr
