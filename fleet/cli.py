"""The `fleet` command: the platform side of the stations (ingest, simulation, console)."""
from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any, Optional

import typer

from fleet.settings import FleetSettings, SettingsError, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="The platform side of community service stations.")


@app.callback()
def _options(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(None, "--config", help="TOML settings file."),
) -> None:
    ctx.obj = {"config": config}


def settings_from(ctx: typer.Context, **overrides: Any) -> FleetSettings:
    try:
        return load_settings((ctx.obj or {}).get("config"), **overrides)
    except SettingsError as exc:
        typer.echo(f"fleet: {exc}", err=True)
        raise typer.Exit(2) from None


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


@app.command()
def migrate(ctx: typer.Context) -> None:
    """Bring the PostgreSQL schema to head and create the month partitions ahead."""
    from fleet import db

    settings = settings_from(ctx)
    db.upgrade(settings.database_url)
    typer.echo("fleet: schema at head")


@app.command()
def ingest(
    ctx: typer.Context,
    workers: int = typer.Option(2, "--workers", min=1, max=64, help="Worker processes."),
) -> None:
    """Run N ingest workers (MQTT 5 shared subscription -> PostgreSQL, ack after commit)."""
    from edge.logs import configure_logging
    from fleet import db
    from fleet.ingest import supervise

    settings = settings_from(ctx)
    configure_logging(settings.log_level)
    db.upgrade(settings.database_url)
    supervise((ctx.obj or {}).get("config"), workers, _stop_on_signals())


@app.command()
def keygen() -> None:
    """A new X25519 key pair: the private half for FLEET_PLATFORM_PRIVATE_KEY, the public
    half for the stations' EDGE_MQTT__PLATFORM_PUBLIC_KEY."""
    import base64

    from fleet.sealing import new_private_key, public_key_b64

    private = new_private_key()
    typer.echo(f"FLEET_PLATFORM_PRIVATE_KEY={base64.b64encode(private).decode()}")
    typer.echo(f"EDGE_MQTT__PLATFORM_PUBLIC_KEY={public_key_b64(private)}")


def main() -> None:
    app()
