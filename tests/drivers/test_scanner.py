"""The serial line-mode scanner, speaking real bytes through a pseudo-terminal."""
from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from edge.drivers.scanner import MAX_LINE_BYTES, SerialScanner, parse_terminator

from tests.support.inbox import Inbox

pytestmark = pytest.mark.timeout(30)



class Pty:
    """The scanner's end of a cable: bytes written to the master arrive at the port."""

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        self.path = os.ttyname(slave)
        self._slave = slave

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        os.close(self.master)
        os.close(self._slave)


@pytest.fixture
def pty() -> Iterator[Pty]:
    cable = Pty()
    yield cable
    cable.close()


def open_scanner(pty: Pty, **options) -> SerialScanner:
    scanner = SerialScanner(pty.path, **options)
    deadline = time.monotonic() + 5
    while not scanner.connected and time.monotonic() < deadline:
        time.sleep(0.01)
    assert scanner.connected
    return scanner


@pytest.fixture
def scanners() -> Iterator[list[SerialScanner]]:
    opened: list[SerialScanner] = []
    yield opened
    for scanner in opened:
        scanner.close()


@pytest.mark.parametrize("terminator", [b"\r", b"\n", b"\r\n", b"\t"])
def test_lines_with_the_configured_terminator(pty, scanners, terminator: bytes) -> None:
    scanner = open_scanner(pty, terminator=terminator)
    scanners.append(scanner)
    inbox = Inbox()
    scanner.start(inbox)
    pty.send(b"P1.first" + terminator + b"R-second" + terminator)
    assert inbox.wait_for(2) == ["P1.first", "R-second"]


def test_a_line_split_across_reads_is_joined(pty, scanners) -> None:
    scanner = open_scanner(pty, terminator=b"\r\n")
    scanners.append(scanner)
    inbox = Inbox()
    scanner.start(inbox)
    pty.send(b"P1.abc")
    time.sleep(0.05)
    pty.send(b"def\r")
    time.sleep(0.05)
    pty.send(b"\n")
    assert inbox.wait_for(1) == ["P1.abcdef"]


def test_crlf_scanner_on_a_cr_setting_gives_clean_codes(pty, scanners) -> None:
    scanner = open_scanner(pty, terminator=b"\r")
    scanners.append(scanner)
    inbox = Inbox()
    scanner.start(inbox)
    pty.send(b"one\r\ntwo\r\n")
    assert inbox.wait_for(2) == ["one", "two"]


def test_same_code_twice_in_a_row_is_one_scan(pty, scanners) -> None:
    scanner = open_scanner(pty, repeat_hold_s=60)
    scanners.append(scanner)
    inbox = Inbox()
    scanner.start(inbox)
    pty.send(b"A\rA\rB\rA\rEND\r")
    assert inbox.wait_for(4) == ["A", "B", "A", "END"]


def test_codes_scanned_while_nobody_asks_are_never_delivered(pty, scanners) -> None:
    scanner = open_scanner(pty)
    scanners.append(scanner)
    inbox = Inbox()
    pty.send(b"stale\r")
    time.sleep(0.2)  # the reader drains it with no consumer
    scanner.start(inbox)
    pty.send(b"fresh\r")
    assert inbox.wait_for(1) == ["fresh"]
    scanner.stop()
    pty.send(b"after-stop\r")
    time.sleep(0.2)
    pty.send(b"half-a-li")  # a line begun while stopped is not the new screen's either
    time.sleep(0.2)
    scanner.start(inbox)
    pty.send(b"ne\ragain\r")
    assert inbox.wait_for(2) == ["fresh", "again"]


def test_garbage_is_dropped_and_reading_goes_on(pty, scanners) -> None:
    scanner = open_scanner(pty)
    scanners.append(scanner)
    inbox = Inbox()
    scanner.start(inbox)
    pty.send(b"\xff\xfe\xfd\r")  # not UTF-8
    pty.send(b"x" * (MAX_LINE_BYTES + 100))  # no terminator: a line that never ends
    pty.send(b"\rok\r")
    assert inbox.wait_for(1) == ["ok"]


def test_a_failing_consumer_does_not_stop_the_reader(pty, scanners) -> None:
    scanner = open_scanner(pty)
    scanners.append(scanner)
    inbox = Inbox()

    def fragile(code: str) -> None:
        inbox(code)
        if code == "boom":
            raise RuntimeError("consumer bug")

    scanner.start(fragile)
    pty.send(b"boom\rnext\r")
    assert inbox.wait_for(2) == ["boom", "next"]


def test_missing_port_is_retried_without_crashing(tmp_path, scanners) -> None:
    scanner = SerialScanner(str(tmp_path / "no-such-tty"), reopen_s=0.05)
    scanners.append(scanner)
    time.sleep(0.2)
    assert not scanner.connected


@pytest.mark.parametrize("text, expected", [
    ("\r", b"\r"), ("\\r\\n", b"\r\n"), ("CRLF", b"\r\n"), ("lf", b"\n"), ("TAB", b"\t"),
])
def test_terminator_settings(text: str, expected: bytes) -> None:
    assert parse_terminator(text) == expected


def test_empty_terminator_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_terminator("")
