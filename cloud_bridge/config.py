"""`config.set`: the cloud changes a safe subset of settings. Values are validated with the
Settings model, kept in the kv table, applied live where that is cheap, and applied to
everything at the next start through `apply_stored_overrides` (stored values win over the
TOML file and the environment: the cloud's latest word is the site's configuration)."""
from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from cloud_bridge.commands import CommandError
from edge.logs import get_logger
from edge.settings import Settings
from edge.storage import Database, KeyValue

log = get_logger("cloud_bridge.config")

OVERRIDES_KEY = "config.overrides"
SAFE_KEYS = frozenset({
    "kiosk.idle_timeout_s", "kiosk.idle_warning_s", "locker.retention_hours",
    "locker.door_left_open_s", "log_level", "site.opening_hours",
})
LIVE_KEYS = frozenset({"kiosk.idle_timeout_s", "kiosk.idle_warning_s", "log_level"})


def apply_stored_overrides(settings: Settings, db: Database) -> Settings:
    """Settings with the cloud's stored overrides applied; a stored value that no longer
    validates is skipped with a warning, never a reason not to start."""
    with db.read() as session:
        stored = _stored(session)
    result = settings
    for key, value in stored.items():
        try:
            result = _with(result, {key: value})
        except (ValidationError, KeyError) as exc:
            log.warning("config_override_skipped", key=key, error=str(exc).splitlines()[0])
    return result


class ConfigCommand:
    """The `config.set` handler (runs inside the command's transaction)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def __call__(self, session: Session, data: dict[str, Any]) -> dict[str, Any]:
        changes: dict[str, Any] = data["settings"]
        unsafe = sorted(set(changes) - SAFE_KEYS)
        if unsafe:
            raise CommandError("invalid", f"not settable remotely: {', '.join(unsafe)}")
        stored = {**_stored(session), **changes}
        try:
            candidate = _with(self._settings, stored)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise CommandError("invalid", f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        row = session.get(KeyValue, OVERRIDES_KEY)
        body = json.dumps(stored, sort_keys=True)
        if row is None:
            session.add(KeyValue(key=OVERRIDES_KEY, value=body))
        else:
            row.value = body
        live = sorted(set(changes) & LIVE_KEYS)
        self._apply_live(candidate, live)
        return {"stored": sorted(changes), "applied_now": live,
                "applied_at_restart": sorted(set(changes) - LIVE_KEYS)}

    def _apply_live(self, candidate: Settings, keys: list[str]) -> None:
        for key in keys:
            section, _, field = key.rpartition(".")
            if section:
                setattr(getattr(self._settings, section), field, getattr(getattr(candidate, section), field))
            else:
                setattr(self._settings, field, getattr(candidate, field))
        if "log_level" in keys:
            logging.getLogger().setLevel(candidate.log_level.upper())


def _stored(session: Session) -> dict[str, Any]:
    row = session.get(KeyValue, OVERRIDES_KEY)
    return json.loads(row.value) if row else {}


def _with(settings: Settings, changes: dict[str, Any]) -> Settings:
    """A validated copy of `settings` with dotted keys changed."""
    tree = settings.model_dump()
    for key, value in changes.items():
        if key not in SAFE_KEYS:
            raise KeyError(key)
        node = tree
        *sections, field = key.split(".")
        for section in sections:
            node = node[section]
        node[field] = value
    return type(settings).model_validate(tree)
