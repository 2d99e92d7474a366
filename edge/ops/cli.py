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
    from edge.cli_options import settings_from

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


from typer.core import TyperGroup


class _UpdateGroup(TyperGroup):
    """`edge update BUNDLE` is `edge update install BUNDLE`; the other words are commands."""

    def resolve_command(self, ctx, args):  # type: ignore[no-untyped-def]
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["install", *args]
        return super().resolve_command(ctx, args)


update_app = typer.Typer(cls=_UpdateGroup, no_args_is_help=True,
                         help="Install a signed release bundle beside the running one; keep it only once healthy.")


def _releases(ctx: typer.Context):  # noqa: ANN202
    from edge.ops.update import releases_from

    settings = _settings(ctx)
    return settings, releases_from(settings)


@update_app.command("install")
def update_install(ctx: typer.Context, bundle: Path = typer.Argument(..., help="A release bundle (.tar.gz)."),
                   no_restart: bool = typer.Option(False, "--no-restart", help="Switch, but do not restart.")) -> None:
    """Verify BUNDLE (signature, checksums), install it beside the running release, switch
    `current` to it and restart; it stays only if its health check passes."""
    from edge.ops.update import UpdateError, load_public_key, verify_bundle

    settings, releases = _releases(ctx.parent or ctx)
    try:
        verified = verify_bundle(bundle, load_public_key(settings.update.public_key))
        version = releases.install(verified, restart=not no_restart)
    except UpdateError as exc:
        _fail(str(exc))
    typer.echo(f"release {version} installed and current; it is kept once `edge update mark-good` passes")


@update_app.command("install-ready")
def update_install_ready(ctx: typer.Context) -> None:
    """Install the newest bundle the controller fetched for `update.available` (run as root
    by edge-update.service when edge-update.path sees one); the others are dropped."""
    from edge.ops.fetch import ready_bundles
    from edge.ops.update import UpdateError, load_public_key, verify_bundle

    settings, releases = _releases(ctx.parent or ctx)
    bundles = ready_bundles(settings)
    if not bundles:
        typer.echo("no bundle is waiting")
        return
    newest, older = bundles[-1], bundles[:-1]
    for stale in older:
        stale.unlink(missing_ok=True)
    try:
        verified = verify_bundle(newest, load_public_key(settings.update.public_key))  # again: as root
        version = releases.install(verified)
    except UpdateError as exc:
        _fail(str(exc))
    finally:
        newest.unlink(missing_ok=True)
    typer.echo(f"release {version} installed and current; it is kept once `edge update mark-good` passes")


@update_app.command("mark-good")
def update_mark_good(ctx: typer.Context,
                     wait: bool = typer.Option(False, "--wait", help="First wait for the health check "
                                               "(update.health_deadline_s); roll back if it fails.")) -> None:
    """Keep the pending release (run by edge.service's ExecStartPost with --wait)."""
    from edge.ops.update import UpdateError, wait_until_healthy

    settings, releases = _releases(ctx.parent or ctx)
    pending = releases.state().get("pending")
    if pending is None:
        typer.echo("no release is pending")
        return
    try:
        if wait:
            base = f"http://{settings.http.host}:{settings.http.port}"
            healthy, parts = wait_until_healthy(base, settings.update.health_deadline_s)
            if not healthy:
                failing = ", ".join(name for name, ok in parts.items() if ok is False)
                # Only the links: this ExecStartPost fails, systemd stops the unit and its
                # Restart= starts it again, now on the previous release.
                back = releases.rollback(f"health check failed: {failing}", restart=False)
                _fail(f"release {pending} was not healthy within {settings.update.health_deadline_s:g} s "
                      f"({failing}); `current` is back on {back}, which the service restart runs")
        releases.mark_good()
    except UpdateError as exc:
        _fail(str(exc))
    typer.echo(f"release {pending} marked good")


@update_app.command("rollback")
def update_rollback(ctx: typer.Context) -> None:
    """Back to the previous release if the current one is still pending (edge.service's
    OnFailure= unit runs this). The database is left as it is."""
    from edge.ops.update import UpdateError

    _settings_, releases = _releases(ctx.parent or ctx)
    try:
        back = releases.rollback("the service failed before its health check passed")
    except UpdateError as exc:
        _fail(str(exc))
    typer.echo(f"rolled back to {back}" if back else "nothing to roll back: the current release is good")


@update_app.command("guard")
def update_guard(ctx: typer.Context) -> None:
    """Before each start (edge.service ExecStartPre, run from the previous release): a pending
    release gets one start; a second start while still pending rolls it back."""
    from edge.ops.update import UpdateError

    _settings_, releases = _releases(ctx.parent or ctx)
    try:
        back = releases.guard()
    except UpdateError as exc:
        _fail(str(exc))
    if back:
        typer.echo(f"the pending release did not pass its health check in its one start; back on {back}")


@update_app.command("status")
def update_status(ctx: typer.Context) -> None:
    """Current, previous and pending releases, and the last steps taken."""
    _settings_, releases = _releases(ctx.parent or ctx)
    state = releases.state()
    typer.echo(f"current: {releases.version_of('current')}  previous: {releases.version_of('previous')}  "
               f"pending: {state.get('pending')}")
    for step in state.get("history", [])[-10:]:
        typer.echo(f"  {step['at']}  {step['what']}  {step['version']}")


@update_app.command("keygen")
def update_keygen(private_key: Path = typer.Argument(..., help="Signing key (PEM): keep it off the stations."),
                  public_key: Path = typer.Argument(..., help="For update.public_key on every station.")) -> None:
    """Make an Ed25519 key pair for signing release bundles."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from edge.ops.backup import _write_private

    key = Ed25519PrivateKey.generate()
    _write_private(private_key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    public_key.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
    typer.echo(f"signing key: {private_key} (0600)\npublic key: {public_key}")


@update_app.command("build")
def update_build(wheels: list[Path] = typer.Argument(..., help="Every wheel the release needs (pip wheel -w DIR)."),
                 version: str = typer.Option(..., "--version"),
                 key: Path = typer.Option(..., "--key", help="The Ed25519 signing key (PEM)."),
                 output: Path = typer.Option(..., "-o", "--output")) -> None:
    """Make a signed release bundle from wheels built offline."""
    from cryptography.hazmat.primitives import serialization

    from edge.ops.update import make_bundle

    signing_key = serialization.load_pem_private_key(key.read_bytes(), password=None)
    make_bundle(wheels, version, signing_key, output)  # type: ignore[arg-type]
    typer.echo(f"bundle {output}: release {version}, {len(wheels)} wheels")


def register(app: typer.Typer) -> None:
    """Add the operations commands to the `edge` command (edge/cli.py calls this)."""
    from edge.diag import diag_app

    diag_app.command("metrics")(diag_metrics)
    app.add_typer(update_app, name="update")
    app.command("backup")(backup)
    app.command("restore")(restore)
    app.command("backup-keygen")(backup_keygen)
