"""How `edge diag` reaches the locker, and what its commands share.

The lock-board port has one owner at a time (edge/locker/buslock.py). When the port is
free, diag opens the bus itself; when the running controller holds it, diag asks the
controller through its local HTTP API (/api/diag/... on 127.0.0.1), with the controller's
local API credential. Never both at once.
"""
from __future__ import annotations

import getpass
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Protocol

import typer
from rich.console import Console

from edge.cli_options import settings_from

console = Console(highlight=False)  # numbers and phones plain, not coloured mid-text


class DiagError(Exception):
    """A diagnostic could not run; the message says why in one line."""


class Diagnostics(Protocol):
    def doors(self) -> dict[str, Any]: ...
    def open(self, number: int, who: str) -> dict[str, Any]: ...
    def clear_fault(self, number: int, who: str) -> dict[str, Any]: ...
    def maintenance(self, number: int, on: bool, reason: str, who: str) -> dict[str, Any]: ...
    def bus(self) -> dict[str, Any]: ...
    def selftest(self) -> list[dict[str, Any]]: ...
    def events(self, limit: int = 20) -> dict[str, Any]: ...


class HttpDiagnostics:
    """The running controller's /api/diag endpoints."""

    def __init__(self, base_url: str, token: str, timeout_s: float = 30) -> None:
        self._base = base_url.rstrip("/")
        self._token = token  # the controller's local API credential (<data_dir>/api.token)
        self._timeout_s = timeout_s

    def _call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self._base}/api/diag/{path}", data=data,
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {self._token}"},
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

    def maintenance(self, number: int, on: bool, reason: str, who: str) -> dict[str, Any]:
        return self._call("maintenance", {"compartment": number, "on": on, "reason": reason, "who": who})

    def bus(self) -> dict[str, Any]:
        return self._call("bus")

    def selftest(self) -> list[dict[str, Any]]:
        return self._call("selftest")["checks"]

    def events(self, limit: int = 20) -> dict[str, Any]:
        return self._call(f"events?limit={limit}")

    def station(self) -> dict[str, Any]:
        return self._call("station")


@contextmanager
def open_diagnostics(ctx: typer.Context) -> Iterator[tuple[Diagnostics, str]]:
    """Diagnostics and how they are reached ("local bus" or the controller's URL)."""
    from edge.app import local_locker_diagnostics
    from edge.locker.buslock import BusBusy, BusLock, bus_lock_path

    settings = settings_from(ctx)
    controller_url = f"http://{settings.http.host}:{settings.http.port}"
    if settings.locker.serial_url is None and not settings.simulate:
        try:  # a running controller (even a simulated one) answers without any bus setting here
            BusLock(bus_lock_path(settings.data_dir)).acquire().release()
        except BusBusy:
            yield HttpDiagnostics(controller_url, api_token(settings)), "controller"
            return
        fail("the controller is not running and no lock-board bus is configured "
              "(set locker.serial_url / EDGE_LOCKER__SERIAL_URL)")
    with ExitStack() as stack:
        try:
            diagnostics = stack.enter_context(local_locker_diagnostics(settings))
        except BusBusy:
            yield HttpDiagnostics(controller_url, api_token(settings)), "controller"
            return
        yield diagnostics, "local bus"


def api_token(settings: Any) -> str:
    """The running controller's local API credential: readable by its user and root only."""
    from edge.kiosk_ui.guard import API_TOKEN_FILE

    path = settings.data_dir / API_TOKEN_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:  # a controller that has not served yet; its API refuses or is silent
        return ""
    except OSError as exc:
        fail(f"cannot read the local API credential {path} ({exc.strerror}); "
              "run as the controller's user or with sudo")
    raise AssertionError("unreachable")


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"edge diag: {message}", err=True)
    raise typer.Exit(code)


def run(ctx: typer.Context, action: str, *args: Any) -> tuple[Any, str]:
    from edge.locker.errors import LockerError

    try:
        with open_diagnostics(ctx) as (diagnostics, via):
            return getattr(diagnostics, action)(*args), via
    except (DiagError, LockerError) as exc:
        fail(str(exc))
    raise AssertionError("unreachable")


def who_is_asking() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


def emit_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))
