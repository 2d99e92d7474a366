"""The nightly backup: a component that takes a backup into `backup.dir` (a second disk or
folder) once a day at `backup.at` site time, and keeps the newest `backup.keep` files."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from edge.logs import get_logger
from edge.ops.backup import (BackupError, Sealing, load_public_key, read_passphrase_file,
                             take_backup)

log = get_logger("edge.backup")
SUFFIX = ".edgebak"


def sealing_from(passphrase_file: Path | None, recipient_key: Path | None) -> Sealing:
    """The sealing the settings ask for; BackupError when neither or both are set."""
    if passphrase_file is not None and recipient_key is not None:
        raise BackupError("set backup.passphrase_file or backup.recipient_key, not both")
    if recipient_key is not None:
        return Sealing(recipient=load_public_key(recipient_key))
    if passphrase_file is not None:
        return Sealing(passphrase=read_passphrase_file(passphrase_file))
    raise BackupError("no backup key: set backup.passphrase_file or backup.recipient_key")


class NightlyBackup:
    def __init__(self, data_dir: Path, target_dir: Path, keep: int, sealing: Sealing,
                 station: str, at: str, timezone_name: str) -> None:
        self.data_dir, self.target_dir, self.keep = data_dir, target_dir, keep
        self.sealing, self.station = sealing, station
        hour, minute = (int(part) for part in at.split(":"))
        self.trigger = CronTrigger(hour=hour, minute=minute, timezone=timezone_name)
        self._scheduler = BackgroundScheduler(timezone=timezone_name)
        self._scheduler.add_job(self.run_once, self.trigger, id="nightly-backup",
                                coalesce=True, max_instances=1, misfire_grace_time=3600)

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def next_run(self) -> datetime | None:
        return self._scheduler.get_job("nightly-backup").next_run_time

    def run_once(self, now: datetime | None = None) -> Path | None:
        """One backup and the rotation; a failure is logged, never raised (the controller
        keeps running, and the next night tries again)."""
        now = now or datetime.now(timezone.utc)
        target = self.target_dir / f"edge-{self.station}-{now.strftime('%Y%m%dT%H%M%SZ')}{SUFFIX}"
        try:
            self.target_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            take_backup(self.data_dir, target, self.sealing, now=now)
        except (BackupError, OSError) as exc:
            log.error("backup_failed", target=str(target), error=str(exc))
            return None
        removed = rotate(self.target_dir, self.station, self.keep)
        log.info("backup_written", target=str(target), size=target.stat().st_size, removed=len(removed))
        return target


def rotate(folder: Path, station: str, keep: int) -> list[Path]:
    """Delete this station's oldest backups beyond `keep` (names sort by time)."""
    backups = sorted(folder.glob(f"edge-{station}-*{SUFFIX}"))
    old = backups[:-keep] if keep > 0 else backups
    for path in old:
        path.unlink(missing_ok=True)
    return old
