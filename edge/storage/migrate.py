"""Bringing the schema up to date at start, with Alembic, from inside the package.

It takes any object with the database's path and writer engine (`Database` is one) rather
than importing edge.storage.db, which calls it: the two modules do not import each other."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine


class Database(Protocol):
    """What migrations need of edge.storage.db.Database."""

    @property
    def path(self) -> Path: ...
    @property
    def writer(self) -> Engine: ...

# Every module that declares tables on Base; Alembic compares models against these.
MODEL_MODULES = [
    "edge.storage.models",
    "edge.storage.outbox",
    "cloud_bridge.models",
    "edge.community.models",
    "edge.locker.models",
    "edge.identity.models",
    "edge.storage.attempts",
]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def load_models() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)


def alembic_config(db: "Database | None" = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if db is not None:
        config.set_main_option("sqlalchemy.url", f"sqlite:///{db.path}")
    return config


def upgrade_to_head(db: "Database") -> None:
    config = alembic_config(db)
    with db.writer.connect() as connection:
        if _schema_is_newer(config, connection):
            return
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _schema_is_newer(config: Config, connection: object) -> bool:
    """True when the database is at a revision this release does not know: a newer release
    migrated it and was rolled back (ADR 0151). Migrations are expand/contract, so this
    release runs on that schema as it is; it must not (and cannot) downgrade it."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from edge.logs import get_logger

    script = ScriptDirectory.from_config(config)
    current = MigrationContext.configure(connection).get_current_heads()  # type: ignore[arg-type]
    unknown = []
    for revision in current:
        try:
            script.get_revision(revision)
        except CommandError:
            unknown.append(revision)
    if unknown:
        get_logger("edge.storage").warning("schema_newer_than_release", revisions=unknown)
    return bool(unknown)


def new_revision(message: str, rev_id: str, scratch_db: "Database") -> None:
    """Autogenerate a migration from the models (run against a scratch database at head).

    python -c "from pathlib import Path; from edge.storage.db import Database; \\
      from edge.storage.migrate import new_revision; d = Database(Path('/tmp/x.db')); \\
      d.upgrade(); new_revision('add things', '0005', d)"
    """
    command.revision(alembic_config(scratch_db), message=message, autogenerate=True, rev_id=rev_id)
