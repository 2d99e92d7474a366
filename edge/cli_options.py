"""What every `edge` subcommand (run, sim, diag) shares: settings from the global options.

Its own module so that edge/cli.py and edge/diag.py both import it, not each other."""
from __future__ import annotations

from typing import Any

import typer

from edge.settings import Settings, SettingsError, load_settings


def settings_from(ctx: typer.Context, **overrides: Any) -> Settings:
    """Settings for a command, or exit 2 with one line naming the bad setting."""
    try:
        return load_settings((ctx.obj or {}).get("config"), **overrides)
    except SettingsError as exc:
        typer.echo(f"edge: {exc}", err=True)
        raise typer.Exit(2) from None
