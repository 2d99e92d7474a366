"""The operations commands: `edge backup`, `edge restore`, `edge update ...`, `edge diag metrics`.

Each failure is one line on stderr and exit status 2; nothing half-written is left behind.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edge.ops.backup import (BackupError, Opening, Sealing, load_private_key, load_public_key,
                             read_passphrase_file)


def _fail(message: str) -> None:
    typer.echo(f"edge: {message}", err=True)
    raise typer.Exit(2)


def _settings(ctx: typer.Context):  # noqa: ANN202 - Settings, imported late like edge.cli does
    from edge.cli import settings_from

    return settings_from(ctx)


def backup(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="Where to write the encrypted backup."),
    passphrase_file: Optional[Path] = typer.Option(None, "--passphrase-file",
                                                   help="Seal with this passphrase (default backup.passphrase_file)."),
    recipient: Optional[Path] = typer.Option(None, "--recipient",
                                             help="Seal to this X25519 public key (default backup.recipient_key)."),
) -> None:
    """Take a consistent encrypted copy of the database and keys (safe while running)."""
    from edge.ops.backup import take_backup

    settings = _settings(ctx)
    try:
        if passphrase_file is None and recipient is None:
            passphrase_file, recipient = settings.backup.passphrase_file, settings.backup.recipient_key
        if recipient is not None and passphrase_file is None:
            sealing = Sealing(recipient=load_public_key(recipient))
        elif passphrase_file is not None and recipient is None:
            sealing = Sealing(passphrase=read_passphrase_file(passphrase_file))
        elif passphrase_file is None:
            typed = typer.prompt("Backup passphrase", hide_input=True, confirmation_prompt=True)
            sealing = Sealing(passphrase=typed.encode())
        else:
            raise BackupError("give --passphrase-file or --recipient, not both")
        manifest = take_backup(settings.data_dir, file, sealing)
    except BackupError as exc:
        _fail(str(exc))
    typer.echo(f"backup written: {file} ({len(manifest['files'])} files, {file.stat().st_size} bytes)")


def restore(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A backup written by `edge backup`."),
    passphrase_file: Optional[Path] = typer.Option(None, "--passphrase-file"),
    identity: Optional[Path] = typer.Option(None, "--identity", help="X25519 private key (PEM)."),
) -> None:
    """Restore database and keys onto a STOPPED station; what was there is moved aside."""
    from edge.ops.backup import restore_backup

    settings = _settings(ctx)
    try:
        if identity is not None:
            opening = Opening(identity=load_private_key(identity))
        elif passphrase_file is not None:
            opening = Opening(passphrase=read_passphrase_file(passphrase_file))
        else:
            opening = Opening(passphrase=typer.prompt("Backup passphrase", hide_input=True).encode())
        manifest = restore_backup(file, settings.data_dir, opening)
    except BackupError as exc:
        _fail(str(exc))
    typer.echo(f"restored backup of {manifest['created']} into {settings.data_dir}")


def backup_keygen(
    private_key: Path = typer.Argument(..., help="Private key (PEM): keep it OFF the station."),
    public_key: Path = typer.Argument(..., help="Public key (PEM) for backup.recipient_key."),
) -> None:
    """Make an X25519 key pair for backups sealed to a recipient."""
    from edge.ops.backup import generate_identity

    generate_identity(private_key, public_key)
    typer.echo(f"private key: {private_key} (0600)\npublic key: {public_key}")


def diag_metrics(ctx: typer.Context) -> None:
    """Print the station's Prometheus metrics: from the running controller's /metrics, or,
    when it is stopped, what can be read from the database and the board (no counters)."""
    import urllib.error
    import urllib.request

    settings = _settings(ctx)
    url = f"http://{settings.http.host}:{settings.http.port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            typer.echo(reply.read().decode(), nl=False)
            return
    except (urllib.error.URLError, OSError):
        pass
    from edge.app import Controller
    from edge.clock import SystemClock
    from edge.ops.metrics import StationCollector
    from edge.storage import Database
    from prometheus_client import CollectorRegistry, generate_latest

    if not settings.database_path.is_file():
        _fail(f"the controller does not answer at {url} and there is no database at {settings.database_path}")
    typer.echo(f"edge: the controller does not answer at {url}; state read from the database", err=True)
    db = Database(settings.database_path)
    try:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StationCollector(Controller(settings=settings, db=db, clock=SystemClock())))
        typer.echo(generate_latest(registry).decode(), nl=False)
    finally:
        db.dispose()


def register(app: typer.Typer) -> None:
    """Add the operations commands to the `edge` command (edge/cli.py calls this)."""
    from edge.diag import diag_app

    diag_app.command("metrics")(diag_metrics)
    app.command("backup")(backup)
    app.command("restore")(restore)
    app.command("backup-keygen")(backup_keygen)
