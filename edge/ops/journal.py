"""Log records to journald through its native protocol, with one journal field per key.

`log.info("door_opened", door=12, result="ok")` becomes MESSAGE=door_opened door=12 ...,
EVENT=door_opened, DOOR=12, RESULT=ok, PRIORITY=6, SYSLOG_IDENTIFIER=edge, so
`journalctl -u edge -o json` (or `journalctl -u edge DOOR=12`) finds records by field.

The protocol (systemd's "Native Journal Protocol" document) is one datagram per record to
a Unix socket: `KEY=value\\n` per field, or `KEY\\n<64-bit LE length><value>\\n` when the value
holds a newline; a record too large for a datagram goes in a sealed memfd passed with
SCM_RIGHTS. It is written here rather than through libsystemd's bindings because those
always send to /run/systemd/journal/socket, and the socket must be a setting for tests (ADR 0153).
"""
from __future__ import annotations

import errno
import json
import logging
import os
import re
import socket
import struct
from pathlib import Path
from typing import Any

import structlog

JOURNAL_SOCKET = Path("/run/systemd/journal/socket")
IDENTIFIER = "edge"
_SYSLOG_PRIORITY = {"critical": 2, "error": 3, "warning": 4, "info": 6, "debug": 7}
_BAD_KEY_CHARS = re.compile(r"[^A-Z0-9_]")
# Fields that structlog adds and journald already records (time, level as PRIORITY).
_NOT_FIELDS = {"timestamp", "level", "event", "_record", "_from_structlog"}
# Technicians search by door: the locker logs the compartment number, the journal gets both.
_ALIASES = {"compartment": "DOOR"}


def wants_journal(mode: str, environ: dict[str, str] | None = None) -> bool:
    """journald when asked ("on"), or under systemd ("auto" and JOURNAL_STREAM set)."""
    environ = os.environ if environ is None else environ
    return mode == "on" or (mode == "auto" and bool(environ.get("JOURNAL_STREAM")))


def journal_fields(event_dict: dict[str, Any]) -> dict[str, str]:
    """The journal fields of one rendered structlog event dict."""
    event = str(event_dict.get("event", ""))
    level = str(event_dict.get("level", "info")).lower()
    extra = {k: v for k, v in event_dict.items() if k not in _NOT_FIELDS}
    message = " ".join([event, *(f"{k}={_text(v)}" for k, v in extra.items())])
    fields = {"MESSAGE": message, "PRIORITY": str(_SYSLOG_PRIORITY.get(level, 6)),
              "SYSLOG_IDENTIFIER": IDENTIFIER, "EVENT": event}
    for key, value in extra.items():
        name = field_name(key)
        if name and name not in fields:
            fields[name] = _text(value)
        alias = _ALIASES.get(key)
        if alias and alias not in fields:
            fields[alias] = _text(value)
    return fields


def field_name(key: str) -> str:
    """A journal field name: upper case letters, digits and underscores, not starting with
    an underscore (those are journald's own trusted fields) or a digit."""
    name = _BAD_KEY_CHARS.sub("_", key.upper()).lstrip("_")
    if name[:1].isdigit():
        name = "F_" + name
    return name[:64]


def encode(fields: dict[str, str]) -> bytes:
    out = bytearray()
    for key, value in fields.items():
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return bytes(out)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


class JournalHandler(logging.Handler):
    """A logging handler that sends each record to journald. Its formatter (a structlog
    ProcessorFormatter ending in JSON) turns a record into the event dict, through the same
    processors as the console, so what the console would not show the journal does not get."""

    def __init__(self, socket_path: Path = JOURNAL_SOCKET) -> None:
        super().__init__()
        self.socket_path = str(socket_path)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event_dict = json.loads(self.format(record))
            if record.exc_info and "exception" not in event_dict:
                event_dict["exception"] = logging.Formatter().formatException(record.exc_info)
            self.send(encode(journal_fields(event_dict)))
        except Exception:  # a log record must never take the controller down
            self.handleError(record)

    def send(self, datagram: bytes) -> None:
        try:
            self._socket.sendto(datagram, self.socket_path)
        except OSError as exc:
            if exc.errno not in (errno.EMSGSIZE, errno.ENOBUFS):
                raise
            self._send_as_memfd(datagram)

    def _send_as_memfd(self, datagram: bytes) -> None:
        fd = os.memfd_create("journal-record", os.MFD_ALLOW_SEALING)
        try:
            os.write(fd, datagram)
            import fcntl

            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW
                        | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL)
            self._socket.sendmsg([], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))],
                               0, self.socket_path)
        finally:
            os.close(fd)

    def close(self) -> None:
        self._socket.close()
        super().close()


def route_logs_to_journal(socket_path: Path = JOURNAL_SOCKET) -> JournalHandler:
    """Replace the console handler that edge.logs.configure_logging installed with a
    journal handler that keeps its processors (redaction included) but renders JSON."""
    root = logging.getLogger()
    console = next((h for h in root.handlers
                    if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter)), None)
    handler = JournalHandler(socket_path)
    if console is not None:
        formatter: structlog.stdlib.ProcessorFormatter = console.formatter  # type: ignore[assignment]
        processors = list(formatter.processors[:-1])  # everything but the console renderer
        handler.setFormatter(structlog.stdlib.ProcessorFormatter(
            processors=[*processors, structlog.processors.dict_tracebacks,
                        structlog.processors.JSONRenderer(default=str)],
            foreign_pre_chain=formatter.foreign_pre_chain))
        root.removeHandler(console)
    else:
        handler.setFormatter(structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.JSONRenderer(default=str)]))
    root.addHandler(handler)
    return handler


def configure_log_destination(mode: str, socket_path: Path) -> JournalHandler | None:
    """After configure_logging: send records to journald when wanted, else leave the console."""
    if not wants_journal(mode):
        return None
    return route_logs_to_journal(socket_path)
