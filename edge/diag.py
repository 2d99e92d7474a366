"""`edge diag ...`: the technician's view of the locker, over SSH.

The lock-board port has one owner at a time (edge/locker/buslock.py). When the port is
free, diag opens the bus itself; when the running controller holds it, diag asks the
controller through its local HTTP API (/api/diag/... on 127.0.0.1). Never both at once.
"""
from __future__ import annotations

import getpass
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Optional, Protocol

import typer
from rich.console import Console
from rich.table import Table

diag_app = typer.Typer(no_args_is_help=True, help="Technician diagnostics of the parcel locker.")
console = Console()


class DiagError(Exception):
    """A diagnostic could not run; the message says why in one line."""


class Diagnostics(Protocol):
    def doors(self) -> dict[str, Any]: ...
    def open(self, number: int, who: str) -> dict[str, Any]: ...
    def clear_fault(self, number: int, who: str) -> dict[str, Any]: ...
    def bus(self) -> dict[str, Any]: ...
    def selftest(self) -> list[dict[str, Any]]: ...
    def events(self, limit: int = 20) -> dict[str, Any]: ...


class HttpDiagnostics:
    """The running controller's /api/diag endpoints."""

    def __init__(self, base_url: str, timeout_s: float = 30) -> None:
        self._base = base_url.rstrip("/")
        self._timeout_s = timeout_s

    def _call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self._base}/api/diag/{path}", data=data,
                                         headers={"Content-Type": "application/json"},
                                         method="GET" if body is None else "POST")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as reply:
                return json.load(reply)
        except urllib.error.HTTPError as exc:
            try:
                message = json.load(exc)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {exc.code}"
            raise DiagError(f"controller refused: {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise DiagError(f"the running controller holds the bus but its API at {self._base} "
                            f"does not answer ({exc})") from None

    def doors(self) -> dict[str, Any]:
        return self._call("doors")

    def open(self, number: int, who: str) -> dict[str, Any]:
        return self._call("open", {"compartment": number, "who": who})

    def clear_fault(self, number: int, who: str) -> dict[str, Any]:
        return self._call("clear-fault", {"compartment": number, "who": who})

    def bus(self) -> dict[str, Any]:
        return self._call("bus")

    def selftest(self) -> list[dict[str, Any]]:
        return self._call("selftest")["checks"]

    def events(self, limit: int = 20) -> dict[str, Any]:
        return self._call(f"events?limit={limit}")


@contextmanager
def open_diagnostics(ctx: typer.Context) -> Iterator[tuple[Diagnostics, str]]:
    """Diagnostics and how they are reached ("local bus" or the controller's URL)."""
    from edge.app import Controller, _build_locker
    from edge.cli import settings_from
    from edge.clock import SystemClock
    from edge.locker.buslock import BusBusy
    from edge.storage import Database

    settings = settings_from(ctx)
    if settings.locker.serial_url is None and not settings.simulate:
        _fail("no lock-board bus configured (set locker.serial_url / EDGE_LOCKER__SERIAL_URL)")
    db = Database(settings.database_path)
    try:
        db.upgrade()
        controller = Controller(settings=settings, db=db, clock=SystemClock())
        try:
            _build_locker(controller)
        except BusBusy:
            yield HttpDiagnostics(f"http://{settings.http.host}:{settings.http.port}"), "controller"
            return
        runtime = controller.components[-1]
        try:
            yield controller.services["locker_diagnostics"], "local bus"
        finally:
            runtime.release()  # type: ignore[attr-defined]
    finally:
        db.dispose()


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"edge diag: {message}", err=True)
    raise typer.Exit(code)


def _run(ctx: typer.Context, action: str, *args: Any) -> tuple[Any, str]:
    from edge.locker.errors import LockerError

    try:
        with open_diagnostics(ctx) as (diagnostics, via):
            return getattr(diagnostics, action)(*args), via
    except (DiagError, LockerError) as exc:
        _fail(str(exc))
    raise AssertionError("unreachable")


def _who() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


def _emit_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))


@diag_app.command()
def doors(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Every compartment: board, lock, latch, item, parcel state, fault. Exit 1 when a
    board does not answer."""
    report, via = _run(ctx, "doors")
    if as_json:
        _emit_json(report)
    else:
        table = Table(title=f"compartments (via {via})")
        for column in ("no.", "board", "lock (1-16)", "size", "latch", "item", "state", "parcel", "fault"):
            table.add_column(column)
        for c in report["compartments"]:
            item = "?" if c["item"] is None else ("yes" if c["item"] else "no")
            table.add_row(str(c["number"]), str(c["board"]), str(c["lock"] + 1), c["size"], c["latch"],
                          item, c["state"], (c["parcel_state"] or "-") + (" overdue" if c["overdue"] else ""),
                          c["fault"] or "")
        console.print(table)
        for board in report["boards"]:
            if not board["reachable"]:
                console.print(f"[red]board {board['board']} unreachable:[/red] {board['error']}")
    if any(not b["reachable"] for b in report["boards"]):
        raise typer.Exit(1)


@diag_app.command("open")
def open_door(ctx: typer.Context, number: int = typer.Argument(..., help="compartment number"),
              yes: bool = typer.Option(False, "--yes", help="do not ask"),
              as_json: bool = typer.Option(False, "--json"),
              who: Optional[str] = typer.Option(None, "--who", help="technician name for the audit")) -> None:
    """Open one door (audited as technician). Exit 0 only when status confirms it open."""
    if not yes and not typer.confirm(f"Open compartment {number}?"):
        raise typer.Exit(1)
    result, via = _run(ctx, "open", number, who or _who())
    if as_json:
        _emit_json(result)
    elif result["opened"]:
        console.print(f"compartment {number} is open (attempts {result['attempts']}, via {via})")
    else:
        console.print(f"[red]compartment {number} did not open:[/red] {result['error']}")
    if not result["opened"]:
        raise typer.Exit(1)


@diag_app.command("clear-fault")
def clear_fault(ctx: typer.Context, number: int = typer.Argument(..., help="compartment number"),
                yes: bool = typer.Option(False, "--yes", help="do not ask"),
                who: Optional[str] = typer.Option(None, "--who")) -> None:
    """Put a repaired compartment back in service (audited)."""
    if not yes and not typer.confirm(f"Put compartment {number} back in service?"):
        raise typer.Exit(1)
    _run(ctx, "clear_fault", number, who or _who())
    console.print(f"compartment {number} is back in service")


@diag_app.command()
def bus(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Scan the bus: which boards answer. Exit 1 when a configured board is missing."""
    scan, via = _run(ctx, "bus")
    if as_json:
        _emit_json(scan)
    else:
        console.print(f"configured boards: {scan['configured']}  answering: {scan['answering']}  (via {via})")
        if scan["missing"]:
            console.print(f"[red]missing:[/red] {scan['missing']}")
        if scan["unexpected"]:
            console.print(f"[yellow]answering but not configured:[/yellow] {scan['unexpected']}")
        if scan["error"]:
            console.print(f"[red]bus error:[/red] {scan['error']}")
    if scan["missing"] or scan["error"]:
        raise typer.Exit(1)


@diag_app.command()
def selftest(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Database writable, key files, bus answers, each board reachable, disk space."""
    checks, via = _run(ctx, "selftest")
    if as_json:
        _emit_json(checks)
    else:
        table = Table(title=f"self-test (via {via})")
        for column in ("check", "result", "detail"):
            table.add_column(column)
        for check in checks:
            table.add_row(check["check"], "[green]ok[/green]" if check["ok"] else "[red]FAIL[/red]",
                          check["detail"])
        console.print(table)
    if not all(check["ok"] for check in checks):
        raise typer.Exit(1)


@diag_app.command()
def events(ctx: typer.Context, limit: int = typer.Option(20, "--limit", min=1, max=500),
           as_json: bool = typer.Option(False, "--json")) -> None:
    """Recent audit rows and outbox events (pickup codes are never shown)."""
    recent, via = _run(ctx, "events", limit)
    if as_json:
        _emit_json(recent)
        return
    audit_table = Table(title=f"audit (newest first, via {via})")
    for column in ("ts", "actor", "action", "target", "result"):
        audit_table.add_column(column)
    for row in recent["audit"]:
        actor = row["actor"] + (f":{row['actor_id']}" if row["actor_id"] else "")
        audit_table.add_row(row["ts"], actor, row["action"], row["target"] or "", row["result"])
    outbox_table = Table(title="outbox (newest first)")
    for column in ("seq", "ts", "type", "sent", "data"):
        outbox_table.add_column(column)
    for row in recent["outbox"]:
        outbox_table.add_row(str(row["seq"]), row["ts"], row["type"], "yes" if row["published"] else "no",
                             json.dumps(row["data"], ensure_ascii=False)[:120])
    console.print(audit_table)
    console.print(outbox_table)
