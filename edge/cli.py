"""The `edge` command: run the controller, run a simulator, diagnose the hardware."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from edge.settings import Settings, SettingsError, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Edge controller for a community service station.")
sim_app = typer.Typer(no_args_is_help=True, help="Device simulators, runnable alone.")
app.add_typer(sim_app, name="sim")


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
    serve(build_controller(settings))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
