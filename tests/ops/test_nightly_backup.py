"""The nightly backup: scheduled at backup.at in the site's time zone, rotated to
backup.keep files, and a failure logged without stopping anything."""
from __future__ import annotations

import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from edge.app import build_controller
from edge.ops.backup import Opening, open_backup
from edge.settings import SettingsError, load_settings


def test_nightly_backup_is_scheduled_rotates_and_opens(tmp_path: Path) -> None:
    passphrase = tmp_path / "pass"
    passphrase.write_text("nightly-passphrase")
    settings = load_settings(data_dir=tmp_path / "data", http={"port": 0},
                             backup={"dir": str(tmp_path / "disk2"), "keep": 2, "at": "03:30",
                                     "passphrase_file": str(passphrase)})
    controller = build_controller(settings)
    nightly = controller.services.nightly_backup
    controller.start()
    try:
        next_run = nightly.next_run()
        assert (next_run.hour, next_run.minute) == (3, 30) and str(next_run.tzinfo) == "Asia/Shanghai"
        start = datetime(2026, 11, 1, 19, 30, tzinfo=timezone.utc)
        written = [nightly.run_once(start + timedelta(days=day)) for day in range(3)]
    finally:
        controller.stop()
    kept = sorted((tmp_path / "disk2").iterdir())
    assert kept == written[1:]  # the oldest went
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in kept)
    manifest, files = open_backup(kept[-1], Opening(passphrase=b"nightly-passphrase"))
    assert "edge.sqlite3" in files and manifest["created"].startswith("2026-11-03")


def test_a_failed_night_is_logged_and_the_next_one_still_runs(tmp_path: Path) -> None:
    from edge.ops.backup import Sealing
    from edge.ops.nightly import NightlyBackup

    nightly = NightlyBackup(tmp_path / "no-such-station", tmp_path / "disk2", 3,
                            Sealing(passphrase=b"p" * 10), "kiosk-01", "03:30", "Asia/Shanghai")
    assert nightly.run_once() is None
    assert not list((tmp_path / "disk2").glob("*.edgebak"))


def test_backup_dir_without_a_key_stops_start_up_in_one_line(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data", http={"port": 0},
                             backup={"dir": str(tmp_path / "disk2")})
    with pytest.raises(SettingsError, match="bad setting backup: no backup key"):
        build_controller(settings)
