"""The `edge` command: run the controller, run a simulator, diagnose the hardware."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from edge.diag import diag_app
from edge.settings import Settings, SettingsError, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Edge controller for a community service station.")
sim_app = typer.Typer(no_args_is_help=True, help="Device simulators, runnable alone.")
app.add_typer(sim_app, name="sim")
app.add_typer(diag_app, name="diag")


@app.callback()
def _options(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(
        None, "--config", help="TOML settings file (default /etc/edge/edge.toml when present)."
    ),
) -> None:
    ctx.obj = {"config": config}


def settings_from(ctx: typer.Context, **overrides: Any) -> Settings:
    """Settings for a command, or exit 2 with one line naming the bad setting."""
    try:
        return load_settings((ctx.obj or {}).get("config"), **overrides)
    except SettingsError as exc:
        typer.echo(f"edge: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def run(
    ctx: typer.Context,
    simulate: bool = typer.Option(False, "--simulate", help="Simulated hardware (and cloud)."),
    port: Optional[int] = typer.Option(None, "--port", help="Override http.port."),
) -> None:
    """Run the controller: hardware, storage, cloud bridge and the local UI on 127.0.0.1."""
    from edge.app import build_controller, serve
    from edge.logs import configure_logging

    overrides: dict[str, Any] = {"simulate": True} if simulate else {}
    settings = settings_from(ctx, **overrides)
    if port is not None:
        settings.http.port = port
    configure_logging(settings.log_level)
    from edge.ops.journal import configure_log_destination

    configure_log_destination(settings.journal.mode, settings.journal.socket)  # journald under systemd
    from edge.locker.buslock import BusBusy

    try:
        controller = build_controller(settings)
    except (BusBusy, SettingsError) as exc:
        typer.echo(f"edge: {exc}", err=True)
        raise typer.Exit(2) from None
    freeze_startup_objects()
    serve(controller)


def freeze_startup_objects() -> None:
    """The objects built at start (modules, mappers, Flask, services) live as long as the
    process; a full collection walks them all, 50-90 ms on a small box, stalling every
    thread, a door opening included (ADR 0027). Collect once, then take them out of the
    collector's sight."""
    import gc

    gc.collect()
    gc.freeze()


@sim_app.command("lockboard")
def sim_lockboard(
    boards: str = typer.Option("0,1", "--boards", help="Board addresses, comma separated."),
    tcp: Optional[int] = typer.Option(None, "--tcp", help="Serve on this TCP port instead of a PTY."),
    closed_bit: int = typer.Option(1, "--closed-bit", min=0, max=1),
    auto_close: Optional[float] = typer.Option(None, "--auto-close", help="Doors shut after SECONDS."),
) -> None:
    """Kerong KR-CU16 lock boards: prints the port to open, then takes console commands."""
    from simulators.lockboard import run_cli

    try:
        addresses = [int(b) for b in boards.split(",")]
    except ValueError:
        typer.echo(f"edge sim lockboard: --boards takes numbers separated by commas, not {boards!r}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(run_cli(addresses, tcp, closed_bit, auto_close))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


def _register_operations() -> None:
    """Backup, restore, update and metrics commands (edge/ops/cli.py)."""
    from edge.ops.cli import register

    register(app)


_register_operations()
