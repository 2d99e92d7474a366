"""Driving the `edge` CLI in-process beside an in-process controller."""
from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner
from waitress.server import create_server

from edge.cli import app as edge_cli
from edge.kiosk_ui import create_app

runner = CliRunner()


def diag(env: dict[str, str], *args: str, input: str | None = None) -> Any:
    """`edge diag ARGS` in-process with that environment; typer's result."""
    return runner.invoke(edge_cli, ["diag", *args], env=env, input=input)


@pytest.fixture
def logs_on_stderr() -> Iterator[None]:
    """The in-process controller's log lines must not land in the CLI's captured stdout (in
    the field they are two processes). Modules use it with pytest.mark.usefixtures."""
    structlog.reset_defaults()  # whatever an earlier test configured (processors included)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.__stderr__))
    yield
    structlog.reset_defaults()


@contextmanager
def serving(controller: Any, threads: int = 4) -> Iterator[int]:
    """The controller's local app on waitress at a free loopback port (what `edge diag` talks
    to when a controller runs); yields the port."""
    server = create_server(create_app(controller), host="127.0.0.1", port=0, threads=threads)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield server.effective_port
    finally:
        server.close()
        thread.join(5)
