"""Every setting the platform reads, from the environment as `FLEET_<SECTION>__<KEY>`
(or a TOML file, `fleet --config FILE`). A bad value stops start-up with one line naming it.
"""
from __future__ import annotations

import base64
import contextvars
import ipaddress
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

_toml_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar("fleet_toml_file", default=None)


class SettingsError(Exception):
    """A setting is missing or wrong; the message names it in one line."""


class _Section(BaseModel):
    model_config = {"extra": "forbid"}


class FleetMqttSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    keepalive_s: int = Field(30, ge=5)
    # Long enough that a worker restarted after a crash finds its unacknowledged messages.
    session_expiry_s: int = Field(24 * 3600, ge=1)
    client_id_prefix: str = "fleet"
    share_group: str = "ingest"


class IngestSettings(_Section):
    batch_size: int = Field(500, ge=1, le=10_000)  # messages committed (then acknowledged) together
    batch_wait_s: float = Field(0.05, gt=0)  # ... or after this long since the first one
    receive_maximum: int = Field(1000, ge=1, le=65535)  # unacknowledged messages the broker may send
    gap_replay_after_s: float = Field(30, ge=0)  # a gap older than this is asked for again
    gap_replay_retry_s: float = Field(300, gt=0)  # ... and again after this, while it stays open
    replay_expires_s: float = Field(3600, gt=0)  # the outbox.replay command's expires_at
    maintenance_every_s: float = Field(5, gt=0)  # gap replay and partition checks


class ConsoleSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8090, ge=0, le=65535)
    # Signs the session cookie; unset, a random one per start (everyone logs in again).
    secret_key: SecretStr | None = None

    @field_validator("host")
    @classmethod
    def _loopback_only(cls, value: str) -> str:
        # A reverse proxy with TLS fronts the console in production; the app itself stays local.
        host = "127.0.0.1" if value == "localhost" else value
        if ipaddress.ip_address(host).is_loopback:
            return host
        raise ValueError("the console binds a loopback address only (127.0.0.1 or ::1)")


class FleetSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FLEET_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/fleet"
    log_level: str = "INFO"
    # The X25519 key that opens data.secret: standard base64 of the raw 32 bytes, or a file
    # holding that text. It stays on the platform; stations hold only the public half.
    platform_private_key: SecretStr | None = None
    platform_private_key_file: Path | None = None
    # Who texts residents their opened codes: `module:Class` of a Notifier (fleet/notify.py).
    notifier: str = "fleet.notify:LoggingNotifier"
    mqtt: FleetMqttSettings = FleetMqttSettings()
    ingest: IngestSettings = IngestSettings()
    console: ConsoleSettings = ConsoleSettings()

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str) -> str:
        if not value.startswith("postgresql"):
            raise ValueError("a PostgreSQL SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db")
        return value

    @field_validator("platform_private_key")
    @classmethod
    def _raw_x25519(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _decode_key(value.get_secret_value())
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _toml_file.get()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    def private_key_bytes(self) -> bytes | None:
        """The raw 32-byte X25519 private key, or None when none is configured."""
        if self.platform_private_key is not None:
            return _decode_key(self.platform_private_key.get_secret_value())
        if self.platform_private_key_file is not None:
            try:
                return _decode_key(self.platform_private_key_file.read_text().strip())
            except OSError as exc:
                raise SettingsError(f"cannot read platform_private_key_file: {exc.strerror}") from None
        return None


def _decode_key(text: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise ValueError("standard base64 of a raw 32-byte X25519 key") from None
    if len(raw) != 32:
        raise ValueError("standard base64 of a raw 32-byte X25519 key")
    return raw


def load_settings(config_file: Path | None = None, **overrides: Any) -> FleetSettings:
    """Read settings, or raise SettingsError with one line naming what is wrong."""
    if config_file is not None and not config_file.is_file():
        raise SettingsError(f"config file not found: {config_file}")
    token = _toml_file.set(config_file)
    try:
        return FleetSettings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = [str(part) for part in first["loc"]]
        env_name = "FLEET_" + "__".join(p.upper() for p in path)
        raise SettingsError(f"bad setting {'.'.join(path)} ({env_name}): {first['msg']}") from None
    except ValueError as exc:
        raise SettingsError(f"cannot read settings: {exc}") from None
    finally:
        _toml_file.reset(token)
