"""The sd_notify watchdog against a real unix datagram socket standing in for systemd."""
from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.storage import Database
from edge.watchdog import Watchdog, database_answers, thread_alive


@pytest.fixture
def systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def received(sock: socket.socket) -> str:
    return sock.recv(1024).decode()


@pytest.mark.timeout(30)
def test_ready_then_watchdog_while_healthy_then_stopping(systemd: socket.socket, db: Database) -> None:
    dog = Watchdog({"database": database_answers(db)}, interval_s=0.05)
    dog.start()
    try:
        assert received(systemd) == "READY=1"
        assert received(systemd) == "WATCHDOG=1"
        assert received(systemd) == "WATCHDOG=1"
    finally:
        dog.stop()
    messages = []
    systemd.settimeout(0)
    try:
        while True:
            messages.append(received(systemd))
    except BlockingIOError:
        pass
    assert messages[-1] == "STOPPING=1"


@pytest.mark.timeout(30)
def test_no_watchdog_while_a_check_fails(systemd: socket.socket, db: Database) -> None:
    healthy = {"http": True}
    dog = Watchdog({"database": database_answers(db), "http": lambda: healthy["http"]},
                   interval_s=3600)  # beats are driven by hand below
    dog.start()
    assert received(systemd) == "READY=1"
    healthy["http"] = False
    assert dog.beat() is False
    assert received(systemd) == "STATUS=unhealthy: http"
    healthy["http"] = True
    assert dog.beat() is True
    assert received(systemd) == "WATCHDOG=1"
    dog.stop()


def test_a_crashing_check_counts_as_failing(systemd: socket.socket) -> None:
    def broken() -> bool:
        raise RuntimeError("database file gone")

    dog = Watchdog({"database": broken}, interval_s=3600)
    dog.start()
    assert received(systemd) == "READY=1"
    assert dog.beat() is False
    dog.stop()


def test_without_notify_socket_it_does_nothing(monkeypatch: pytest.MonkeyPatch, db: Database) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    dog = Watchdog({"database": database_answers(db)}, interval_s=0.01)
    dog.start()
    assert dog.active is False
    assert dog.beat() is True  # checks still run; there is simply nobody to tell
    dog.stop()


def test_interval_is_half_of_systemd_watchdog_sec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert Watchdog({})._interval_s == 15.0


def test_thread_alive_follows_the_thread() -> None:
    import threading

    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    watched: dict[str, threading.Thread | None] = {"thread": None}
    check = thread_alive(lambda: watched["thread"])
    assert check() is False  # not created yet
    watched["thread"] = worker
    worker.start()
    assert check() is True
    release.set()
    worker.join()
    assert check() is False


@pytest.mark.timeout(90)
def test_edge_run_under_systemd_is_ready_then_petted_then_stops_cleanly(systemd: socket.socket,
                                                                       tmp_path: Path) -> None:
    """The real `edge run --simulate`, as edge.service starts it (Type=notify, WatchdogSec)."""
    import os
    import signal
    import subprocess
    import sys

    from tests.support.ports import free_port

    env = {**os.environ, "EDGE_DATA_DIR": str(tmp_path / "data"), "WATCHDOG_USEC": "400000",
           "EDGE_HTTP__PORT": str(free_port()), "EDGE_MQTT__HOST": "127.0.0.1",
           "EDGE_MQTT__PORT": str(free_port())}  # a dead broker: no private broker for this test
    edge = subprocess.Popen([sys.executable, "-m", "edge", "run", "--simulate"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    systemd.settimeout(60)  # a whole simulated station starts first: slow on a loaded machine
    try:
        messages = [received(systemd) for _ in range(3)]
        assert messages[0] == "READY=1"
        assert messages[1:] == ["WATCHDOG=1", "WATCHDOG=1"]  # the DB and the web server answered
        edge.send_signal(signal.SIGTERM)
        assert edge.wait(30) == 0
        systemd.setblocking(False)
        after = []
        while True:
            try:
                after.append(received(systemd))
            except BlockingIOError:
                break
        assert after[-1] == "STOPPING=1"
    finally:
        edge.kill()
        edge.wait()
