"""The `edge` command: run the controller, run a simulator, diagnose the hardware."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from edge.cli_options import settings_from
from edge.diag import diag_app
from edge.settings import Settings, SettingsError

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
    from edge.logs import configure_logging

    configure_logging()  # stderr, redacted: stdout carries only a command's output (--json)


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
    from edge.files import lock_down_data_dir

    lock_down_data_dir(settings.data_dir)  # 0700/0600 and umask 077, whoever starts us
    _warn_if_plaintext_broker(settings)
    from edge.locker.buslock import BusBusy

    try:
        controller = build_controller(settings)
    except (BusBusy, SettingsError) as exc:
        typer.echo(f"edge: {exc}", err=True)
        raise typer.Exit(2) from None
    freeze_startup_objects()
    serve(controller)


def _warn_if_plaintext_broker(settings: Settings) -> None:
    """mqtt.insecure_plaintext is a decision someone made: say so at every start."""
    mqtt = settings.mqtt
    if mqtt.host and mqtt.insecure_plaintext and not mqtt.uses_tls:
        from edge.logs import get_logger

        get_logger("edge.cli").warning("mqtt_insecure_plaintext", host=mqtt.host,
                                       why="mqtt.insecure_plaintext = true: broker traffic is not encrypted")


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
    protocol: str = typer.Option("kerong", "--protocol", help="kerong (KR-CU16) or modbus (Modbus RTU relay boards)."),
    units: Optional[str] = typer.Option(None, "--units", help="modbus: unit id of each board (default board + 1)."),
) -> None:
    """Lock boards (KR-CU16, or Modbus RTU with --protocol modbus): prints the port to open,
    then takes console commands."""
    if protocol not in ("kerong", "modbus"):
        typer.echo(f"edge sim lockboard: --protocol is kerong or modbus, not {protocol!r}", err=True)
        raise typer.Exit(2)
    try:
        addresses = [int(b) for b in boards.split(",")]
        unit_ids = [int(u) for u in units.split(",")] if units else None
    except ValueError:
        typer.echo("edge sim lockboard: --boards and --units take numbers separated by commas", err=True)
        raise typer.Exit(2) from None
    if protocol == "modbus":
        from simulators.modbus_lockboard import run_cli as run_modbus_cli

        raise typer.Exit(run_modbus_cli(addresses, tcp, closed_bit, auto_close, unit_ids))
    from simulators.lockboard import run_cli

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
