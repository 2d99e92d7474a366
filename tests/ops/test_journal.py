"""Logs reach journald as fields: a Unix datagram socket bound by the test stands in for
/run/systemd/journal/socket and receives what the native protocol sends."""
from __future__ import annotations

import array
import logging
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from edge.logs import configure_logging, get_logger
from edge.ops.journal import route_logs_to_journal, wants_journal

pytestmark = pytest.mark.timeout(90)


def parse(datagram: bytes) -> dict[str, str]:
    """The native journal protocol, read back: KEY=value lines, or KEY, length, value."""
    fields, at = {}, 0
    while at < len(datagram):
        end = datagram.index(b"\n", at)
        line = datagram[at:end]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            at = end + 1
        else:
            key = line
            (length,) = struct.unpack("<Q", datagram[end + 1:end + 9])
            value = datagram[end + 9:end + 9 + length]
            assert datagram[end + 9 + length:end + 10 + length] == b"\n"
            at = end + 10 + length
        fields[key.decode()] = value.decode()
    return fields


@pytest.fixture
def journal(tmp_path: Path):
    path = tmp_path / "journal.socket"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(30)
    yield path, server
    server.close()


def receive(server: socket.socket) -> dict[str, str]:
    fds = array.array("i")
    data, ancillary, _flags, _addr = server.recvmsg(1 << 20, socket.CMSG_SPACE(4))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:4])
    if fds:  # a record too big for one datagram arrives as a memfd
        with os.fdopen(fds[0], "rb") as memfd:
            memfd.seek(0)  # journald maps it from the start; the sender's offset is shared
            data = memfd.read()
    return parse(data)


@pytest.fixture
def journal_logging(journal):
    path, server = journal
    configure_logging("DEBUG")
    handler = route_logs_to_journal(path)
    yield server
    handler.close()
    configure_logging("INFO")  # the console again for the tests after this one


def test_structlog_fields_become_journal_fields(journal_logging) -> None:
    get_logger("edge.locker").warning("door_left_open", door=12, board=0, seconds=61.5)
    record = receive(journal_logging)
    assert record["EVENT"] == "door_left_open" and record["DOOR"] == "12" and record["BOARD"] == "0"
    assert record["PRIORITY"] == "4" and record["SYSLOG_IDENTIFIER"] == "edge"
    assert record["MESSAGE"].startswith("door_left_open ") and "door=12" in record["MESSAGE"]
    get_logger("edge.locker").warning("door_fault", compartment=21, reason="latch\nstuck")
    record = receive(journal_logging)
    assert record["DOOR"] == record["COMPARTMENT"] == "21" and record["REASON"] == "latch\nstuck"


def test_stdlib_records_multiline_values_and_huge_records_arrive(journal_logging) -> None:
    logging.getLogger("edge.drivers.lockboard").info("board %d status attempt %d/%d", 1, 2, 3)
    record = receive(journal_logging)
    assert record["EVENT"] == "board 1 status attempt 2/3" and record["PRIORITY"] == "6"
    try:
        raise ValueError("bus\nbroken")
    except ValueError:
        get_logger("edge.app").exception("component_stop_failed", component="Bridge")
    record = receive(journal_logging)
    assert record["PRIORITY"] == "3" and record["COMPONENT"] == "Bridge"
    assert "ValueError" in record["EXCEPTION"] and "\n" not in record["EVENT"]
    get_logger("edge.app").info("big", blob="x" * 400_000)  # beyond a datagram: memfd
    assert len(receive(journal_logging)["BLOB"]) == 400_000


def test_journal_is_chosen_under_systemd_only() -> None:
    assert wants_journal("auto", {"JOURNAL_STREAM": "8:1234"})
    assert not wants_journal("auto", {})
    assert wants_journal("on", {}) and not wants_journal("off", {"JOURNAL_STREAM": "8:1"})


def test_edge_run_under_systemd_logs_to_the_journal(journal, tmp_path: Path) -> None:
    path, server = journal
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_")}
    env.update(JOURNAL_STREAM="8:4242", EDGE_JOURNAL__SOCKET=str(path),
               EDGE_DATA_DIR=str(tmp_path / "data"))
    process = subprocess.Popen([sys.executable, "-m", "edge", "run", "--port", "0"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        events = []
        while "serving" not in events:
            events.append(receive(server)["EVENT"])
        assert "serving" in events
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert b"serving" not in stderr  # the journal, not the console, got the records
