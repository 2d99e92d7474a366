"""Commands from the cloud: validated against the contract, run at most once per
transaction_id, answered through the outbox (Priority.REPLY) so replies are durable too.

Handlers are registered by name; the composition root wires them to domain services.
A handler either joins the router's transaction (`in_transaction=True`: it gets the session,
and its writes, the stored result and the reply commit together) or owns its transactions
(it gets only `data`): then the command is marked "running" first, so an edge that dies
mid-command answers a re-delivery with `outcome_unknown` instead of acting twice (ADR 0034).
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from cloud_bridge import contract
from cloud_bridge.models import ProcessedCommand, ReplyRoute
from edge.clock import Clock
from edge.logs import get_logger
from edge.storage import Database, Priority, StorageFull, record_event

log = get_logger("cloud_bridge.commands")

REPLY_TYPE = "command.reply"
MAX_PAYLOAD_BYTES = 8 * 1024 * 1024


class CommandError(Exception):
    """A refusal with a contract error code and plain words; handlers may raise it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Route:
    """Where the reply goes: the command's Response Topic (None: .../reply) and its
    Correlation Data, echoed."""

    topic: str | None = None
    correlation_data: bytes | None = None
    refused_topic: str | None = None  # a Response Topic outside the device's reply namespace


@dataclass(frozen=True)
class _Handler:
    run: Callable[..., Any]
    in_transaction: bool


class CommandRouter:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._handlers: dict[str, _Handler] = {}

    def register(self, name: str, handler: Callable[..., Any], *, in_transaction: bool = False) -> None:
        """`handler(data)` or, with in_transaction, `handler(session, data)`; returns the
        reply's result (a dict, a dataclass or None). The contract must have cmd.<name>."""
        contract.validator(f"cmd.{name}")  # fails now, at wiring time, when the schema is missing
        self._handlers[name] = _Handler(handler, in_transaction)

    def handle(self, name: str, payload: bytes, route: Route = Route()) -> dict[str, Any]:
        """Run one command and record its reply; returns the reply's outcome. Never raises
        for anything the payload contains (StorageFull and database faults do raise: the
        command is then not acknowledged and the broker delivers it again)."""
        if route.refused_topic is not None:
            return self._refuse(name, None, CommandError(
                "bad_response_topic", "replies go only to this device's reply topic or below it"), route)
        try:
            command = self._parse(name, payload)
        except CommandError as refusal:
            return self._refuse(name, None, refusal, route)
        transaction_id = command["transaction_id"]
        with self._db.read() as session:
            earlier = session.get(ProcessedCommand, transaction_id)
        if earlier is not None:
            return self._repeat(earlier, route)
        try:
            data = self._admit(name, command)
        except CommandError as refusal:
            return self._refuse(name, transaction_id, refusal, route)
        handler = self._handlers[name]
        if handler.in_transaction:
            return self._run_in_transaction(name, transaction_id, handler, data, route)
        return self._run_owning_transactions(name, transaction_id, handler, data, route)

    def _parse(self, name: str, payload: bytes) -> dict[str, Any]:
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise CommandError("malformed", f"payload larger than {MAX_PAYLOAD_BYTES} bytes")
        try:
            command = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise CommandError("malformed", "payload is not UTF-8 JSON") from None
        problems = contract.errors("command", command)
        if problems:
            raise CommandError("malformed", f"not a command envelope: {problems[0]}")
        if command["type"] != name:
            raise CommandError("malformed", f"type {command['type']!r} does not match topic cmd/{name}")
        return command

    def _admit(self, name: str, command: dict[str, Any]) -> dict[str, Any]:
        if name not in self._handlers:
            raise CommandError("unknown_command", f"this edge does not handle {name!r}")
        expires_at = command.get("expires_at")
        if expires_at is not None and _parse_time(expires_at) <= self._clock.now():
            raise CommandError("expired", f"the command expired at {expires_at}")
        problems = contract.errors(f"cmd.{name}", command)
        if problems:
            raise CommandError("invalid", problems[0])
        return command["data"]

    def _run_in_transaction(self, name: str, transaction_id: str, handler: _Handler,
                            data: dict[str, Any], route: Route) -> dict[str, Any]:
        with self._db.write() as session:
            effect = session.begin_nested()  # a refused command leaves no half-done writes
            try:
                outcome = _success(handler.run(session, data))
                effect.commit()
            except StorageFull:
                raise
            except Exception as exc:  # noqa: BLE001 - the controller survives any handler fault
                effect.rollback()
                outcome = _failure(name, exc)
            self._store(session, name, transaction_id, outcome, state="done")
            self._reply(session, name, transaction_id, outcome, route)
        return outcome

    def _run_owning_transactions(self, name: str, transaction_id: str, handler: _Handler,
                                 data: dict[str, Any], route: Route) -> dict[str, Any]:
        with self._db.write() as session:
            self._store(session, name, transaction_id, {}, state="running")
        try:
            outcome = _success(handler.run(data))
        except StorageFull:
            outcome = {"ok": False, "error": {"code": "storage_full",
                                              "message": "the edge's storage is full; try again later"}}
        except Exception as exc:  # noqa: BLE001
            outcome = _failure(name, exc)
        with self._db.write() as session:
            self._store(session, name, transaction_id, outcome, state="done")
            self._reply(session, name, transaction_id, outcome, route)
        return outcome

    def _repeat(self, earlier: ProcessedCommand, route: Route) -> dict[str, Any]:
        with self._db.write() as session:
            row = session.get(ProcessedCommand, earlier.transaction_id)
            assert row is not None
            if row.state == "running":  # the edge stopped while the handler ran
                outcome = {"ok": False, "error": {
                    "code": "outcome_unknown",
                    "message": "the edge restarted while running this command; it was not run again"}}
                self._store(session, row.command, row.transaction_id, outcome, state="done")
            else:
                outcome = row.outcome
            self._reply(session, row.command, row.transaction_id, outcome, route, duplicate=True)
        return {**outcome, "duplicate": True}

    def _refuse(self, name: str, transaction_id: str | None, refusal: CommandError,
                route: Route) -> dict[str, Any]:
        outcome = {"ok": False, "error": {"code": refusal.code, "message": refusal.message}}
        log.warning("command_refused", command=name[:64], code=refusal.code, transaction_id=transaction_id)
        with self._db.write() as session:
            if transaction_id is not None:
                self._store(session, name, transaction_id, outcome, state="done")
            self._reply(session, name, transaction_id, outcome, route)
        return outcome

    def _store(self, session: Session, name: str, transaction_id: str, outcome: dict[str, Any],
               *, state: str) -> None:
        row = session.get(ProcessedCommand, transaction_id)
        now = self._clock.now()
        if row is None:
            row = ProcessedCommand(transaction_id=transaction_id, command=name, received_at=now)
            session.add(row)
        row.state = state
        row.outcome = outcome
        row.finished_at = now if state == "done" else None

    def _reply(self, session: Session, name: str, transaction_id: str | None,
               outcome: dict[str, Any], route: Route, *, duplicate: bool = False) -> None:
        body: dict[str, Any] = {"transaction_id": transaction_id, "command": name[:64], **outcome}
        if duplicate:
            body["duplicate"] = True
        event = record_event(session, REPLY_TYPE, body, priority=Priority.REPLY, clock=self._clock)
        if route.topic is not None or route.correlation_data is not None:
            session.add(ReplyRoute(seq=event.seq, topic=route.topic,
                                   correlation_data=route.correlation_data))


def _success(result: Any) -> dict[str, Any]:
    return {"ok": True, "result": to_plain(result) if result is not None else {}}


def _failure(name: str, exc: Exception) -> dict[str, Any]:
    """Domain errors carry .code and a plain .message; anything else is a fault of ours."""
    code, message = getattr(exc, "code", None), getattr(exc, "message", None)
    if isinstance(code, str) and isinstance(message, str):
        return {"ok": False, "error": {"code": code, "message": message}}
    log.exception("command_failed", command=name)
    return {"ok": False, "error": {"code": "internal",
                                   "message": "the command failed inside the edge; see its log"}}


def to_plain(value: Any) -> Any:
    """Handler results as JSON values: dataclasses and datetimes included."""
    from edge.clock import iso_utc

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, datetime):
        return iso_utc(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError("malformed", f"expires_at is not a timestamp: {text!r}") from None
    if moment.tzinfo is None:
        raise CommandError("malformed", "expires_at has no time zone")
    return moment


def ping_handler(version: str) -> Callable[[Session, dict[str, Any]], dict[str, Any]]:
    """`ping`: proves the command path end to end and reports the outbox backlog."""
    from edge.storage import outbox

    def ping(session: Session, _data: dict[str, Any]) -> dict[str, Any]:
        rows, size = outbox.pending(session)
        return {"pong": True, "version": version, "outbox_pending": rows, "outbox_pending_bytes": size}

    return ping
