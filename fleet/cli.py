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
def console(
    ctx: typer.Context,
    port: Optional[int] = typer.Option(None, "--port", help="Override console.port."),
) -> None:
    """Run the staff console on 127.0.0.1 (default port 8090) and its command sender."""
    from datetime import datetime, timezone

    from waitress.server import create_server

    from edge.logs import configure_logging
    from fleet import db
    from fleet.commands import CommandSender
    from fleet.console.app import create_app
    from fleet.console.followup import escalate

    settings = settings_from(ctx)
    configure_logging(settings.log_level)
    db.upgrade(settings.database_url)
    now = lambda: datetime.now(timezone.utc)  # noqa: E731
    sender = CommandSender(settings, now=now).start()
    server = create_server(create_app(settings, now=now, on_command=sender.wake),
                           host=settings.console.host, port=port if port is not None else settings.console.port)
    stop = _stop_on_signals()
    signal.signal(signal.SIGTERM, lambda *_: (stop.set(), server.close()))

    def escalate_every_minute() -> None:
        while not stop.wait(60):
            with db.connect(settings.database_url) as conn:
                escalate(conn, now())

    threading.Thread(target=escalate_every_minute, daemon=True).start()
    typer.echo(f"fleet: console on http://{settings.console.host}:{server.effective_port}/", err=True)
    try:
        server.run()
    except (KeyboardInterrupt, OSError):
        pass
    finally:
        sender.stop()


@app.command()
def dev(
    database_url: Optional[str] = typer.Option(
        None, "--database-url", envvar="FLEET_DATABASE_URL",
        help="The platform's database (created when missing). Default: fleet_dev on 127.0.0.1:5432."),
    port: int = typer.Option(8080, "--port", help="The station's kiosk port on 127.0.0.1."),
    console_port: int = typer.Option(8090, "--console-port", help="The console's port on 127.0.0.1."),
    auto_staff: bool = typer.Option(False, "--auto-staff/--no-auto-staff",
                                    help="Let the simulated cloud decide bookings and follow requests up."),
) -> None:
    """The station (simulated hardware), a private broker, the platform (ingest) and its
    console together on 127.0.0.1, with a demo staff login; Ctrl-C stops them all."""
    from edge.logs import configure_logging
    from fleet.devstack import DevStack, stop_on_signals

    configure_logging()  # to stderr: stdout carries the stack's own lines (URLs, login, SMS)
    stack = DevStack(database_url or "postgresql+psycopg://postgres@127.0.0.1:5432/fleet_dev",
                     http_port=port, console_port=console_port, auto_staff=auto_staff)
    raise typer.Exit(stack.run(stop_on_signals()))


org_app = typer.Typer(no_args_is_help=True, help="Org units, stations and staff accounts.")
app.add_typer(org_app, name="org")


def _with_conn(ctx: typer.Context, work: Any) -> Any:
    from fleet import db
    from fleet.console.accounts import AccountError

    settings = settings_from(ctx)
    with db.connect(settings.database_url) as conn:
        try:
            with conn.transaction():
                return work(conn)
        except AccountError as exc:
            typer.echo(f"fleet: {exc}", err=True)
            raise typer.Exit(2) from None


@org_app.command("add-unit")
def add_unit(ctx: typer.Context, name: str, level: str = typer.Option(..., help="district, street or community"),
             parent: Optional[int] = typer.Option(None, help="The parent unit's id.")) -> None:
    """Add an org unit; prints its id."""
    from fleet.console.accounts import add_unit as add

    typer.echo(_with_conn(ctx, lambda conn: add(conn, name, level, parent)))


@org_app.command("assign-station")
def assign_station(ctx: typer.Context, site_id: str, device_id: str,
                   community: int = typer.Option(..., help="The community unit's id.")) -> None:
    """Put a station (site_id, device_id) in a community."""
    from fleet.console.accounts import assign_station as assign

    _with_conn(ctx, lambda conn: assign(conn, site_id, device_id, community))


@org_app.command("add-staff")
def add_staff(ctx: typer.Context, username: str, display_name: str = typer.Option(..., "--name"),
              unit: int = typer.Option(..., help="The staff member's org unit id.")) -> None:
    """Add a staff account; the password is asked for (never on the command line)."""
    from fleet.console.accounts import add_staff as add

    password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    typer.echo(_with_conn(ctx, lambda conn: add(conn, username, display_name, password, unit)))


@app.command()
def simulate(
    ctx: typer.Context,
    edges: int = typer.Option(1000, "--edges", min=1, help="Simulated stations."),
    events: int = typer.Option(20, "--events", min=1, help="Events per station."),
    connections: int = typer.Option(8, "--connections", min=1, help="MQTT connections they share."),
    duplicate: float = typer.Option(0.01, help="Chance a message is sent twice."),
    reorder: float = typer.Option(0.02, help="Chance a message is swapped with the next."),
    missing: float = typer.Option(0.005, help="Chance a message is held back until replayed."),
    outage: float = typer.Option(0.001, help="Chance per event that a station goes offline a while."),
    linger: float = typer.Option(30.0, help="Seconds to keep answering outbox.replay afterwards."),
    seed: int = typer.Option(1),
) -> None:
    """Simulated stations speaking the contract against the broker of FLEET_MQTT__*."""
    import time

    from fleet.simulate import Chaos, burst, connect_fleet, make_stations

    settings = settings_from(ctx)
    links = connect_fleet(settings.mqtt, make_stations(edges), min(connections, edges))
    started = time.monotonic()
    report = burst(links, events, chaos=Chaos(duplicate=duplicate, reorder=reorder, missing=missing,
                                              outage=outage), seed=seed)
    elapsed = time.monotonic() - started
    typer.echo(f"stations {report.stations}  events {report.events}  sent {report.sent}  "
               f"({report.sent / elapsed:.0f} msg/s)  duplicates {report.duplicates}  "
               f"reordered {report.reordered}  withheld {report.withheld}  outages {report.outages}")
    stop = _stop_on_signals()
    stop.wait(linger)
    typer.echo(f"replayed on request: {sum(link.replayed for link in links)}")
    for link in links:
        link.stop()


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
