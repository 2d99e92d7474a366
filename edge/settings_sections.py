"""Settings sections that stand on their own, re-exported by edge.settings (read its
docstring for where values come from): the base of every section, the locker layout's
entries (compartment, courier) and the operations sections (backups, updates, journal).
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
