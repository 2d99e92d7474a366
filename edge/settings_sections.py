"""Settings sections that stand on their own, re-exported by edge.settings (read its
docstring for where values come from): the base of every section, the locker layout's
entries (compartment, courier), the operations sections (backups, updates, journal) and
the small sections of the outbox, GPIO, kiosk, community and operation records.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

Size = Literal["S", "M", "L"]


class Section(BaseModel):
    """One [section] of the settings file: unknown keys are refused, not ignored."""

    model_config = {"extra": "forbid"}


class CompartmentSpec(Section):
    number: int = Field(ge=1)
    board: int = Field(ge=0, le=15)
    lock: int = Field(ge=0, le=15)
    size: Size = "M"
    enabled: bool = True


class CourierEntry(Section):
    """One courier code's holder: who, and the company whose parcels they may take back."""

    id: str = Field(min_length=1, max_length=64)
    company: str | None = Field(None, min_length=1, max_length=64)

    @property
    def company_name(self) -> str:
        return self.company or self.id


class BackupSettings(Section):
    """Nightly encrypted backups (edge/ops, ADR 0150); no dir: no nightly backup."""

    dir: Path | None = None  # a second disk or folder
    keep: int = Field(7, ge=1)
    at: str = Field("03:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # site time
    passphrase_file: Path | None = None
    recipient_key: Path | None = None  # X25519 public key (PEM or base64 raw)


class UpdateSettings(Section):
    """Release bundles with rollback (edge/ops/update.py, ADR 0151)."""

    public_key: Path | None = None  # Ed25519 public key (PEM) that signs release manifests
    prefix: Path = Path("/opt/edge")  # releases/<version>/, current, previous
    restart_command: str = "systemctl restart --no-block edge.service"
    health_deadline_s: float = Field(120, gt=0)
    allowed_hosts: list[str] = []  # update.available fetches bundles only from these hosts
    download_dir: Path | None = None  # default <data_dir>/updates
    ca_file: Path | None = None  # extra CA for the bundle host's TLS certificate
    python: str | None = None  # the interpreter release venvs are made from (default: this one's)
    # A shared dependency layer release venvs see after their own packages (e.g. Debian's
    # dist-packages with OpenCV and NumPy); empty: each bundle brings every wheel it needs.
    shared_site_packages: list[Path] = []


class JournalSettings(Section):
    """Where log records go: journald's native protocol under systemd, else the console."""

    mode: Literal["auto", "on", "off"] = "auto"  # auto: journald when JOURNAL_STREAM is set
    socket: Path = Path("/run/systemd/journal/socket")


class OutboxSettings(Section):
    """The outbox's storage budget (ADR 0031): durable events are never dropped; when the
    budget is spent, telemetry goes first (oldest first, counted) and then new work is refused."""

    max_pending_rows: int = Field(500_000, ge=100)
    max_pending_bytes: int = Field(256 * 1024 * 1024, ge=64 * 1024)
    telemetry_max_age_s: float = Field(7 * 24 * 3600, gt=0)
    published_tail_rows: int = Field(1000, ge=0)  # published rows kept for diagnostics
    # Published rows are also kept this long, so the platform can ask for a range again
    # (`outbox.replay`) when a gap persists on its side (ADR 0161).
    keep_published_days: float = Field(7, ge=0)


class GpioSettings(Section):
    enabled: bool = False  # off the Pi there are no pins; --simulate uses gpiozero's MockFactory
    presence_pin: int = 17
    buzzer_pin: int = 27
    light_pin: int = 22


class KioskSettings(Section):
    idle_timeout_s: float = Field(90, gt=0)
    idle_warning_s: float = Field(25, ge=20)
    default_language: Literal["zh_CN", "en"] = "zh_CN"


class CommunitySettings(Section):
    emergency_callback_minutes: int = Field(10, ge=1)  # promised on screen after the emergency button


class RecordsSettings(Section):
    """Operation records (the audit trail): kept this long at this site, then purged in
    batches by the scheduler; the purge itself is audited (ADR 0135)."""

    retention_days: int = Field(180, ge=1)
    purge_batch_rows: int = Field(2000, ge=1)
    purge_every_s: float = Field(3600, gt=0)
