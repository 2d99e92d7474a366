"""The deployment files say what deploy/README.md promises, and systemd can parse the units."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pydantic import BaseModel

from edge.settings import Settings, load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def directives(unit: str) -> dict[str, list[str]]:
    """Every `Key=value` of a unit file, continuation lines joined, in order of appearance."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / unit).read_text())
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_edge_service_is_a_watched_notify_service() -> None:
    unit = directives("edge.service")
    assert unit["Type"] == ["notify"]
    assert unit["WatchdogSec"] == ["30"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["User"] == ["edge"]
    assert unit["EnvironmentFile"] == ["/etc/edge/edge.env"]
    assert unit["ExecStart"] == ["/opt/edge/current/venv/bin/edge run"]


def test_edge_service_keeps_a_new_release_only_once_healthy() -> None:
    unit = directives("edge.service")
    assert unit["ExecStartPre"] == ["-+/opt/edge/previous/venv/bin/edge update guard"]
    assert unit["ExecStartPost"] == ["+/opt/edge/current/venv/bin/edge update mark-good --wait"]
    assert unit["OnFailure"] == ["edge-update-rollback.service"]
    rollback = directives("edge-update-rollback.service")
    assert rollback["Type"] == ["oneshot"]
    assert rollback["ExecStart"] == ["/opt/edge/previous/venv/bin/edge update rollback"]
    # update.available: the sandboxed controller leaves a verified bundle; root installs it.
    watch = directives("edge-update.path")
    assert watch["PathExistsGlob"] == ["/var/lib/edge/updates/ready/*.bundle"]
    assert watch["Unit"] == ["edge-update.service"]
    assert directives("edge-update.service")["ExecStart"] == ["/opt/edge/current/venv/bin/edge update install-ready"]


def test_kiosk_browser_waits_for_the_controller_and_always_restarts() -> None:
    unit = directives("kiosk-browser.service")
    assert unit["Restart"] == ["always"]
    assert "http://127.0.0.1:8080/healthz" in unit["ExecStartPre"][0]
    command = unit["ExecStart"][0].split()
    for flag in ("--kiosk", "--noerrdialogs", "--disable-infobars", "--disable-pinch",
                 "--overscroll-history-navigation=0", "--disable-translate",
                 "--disable-features=Translate", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run",
                 "--disable-session-crashed-bubble", "--check-for-update-interval=31536000"):
        assert flag in command, flag
    assert command[-1] == "http://127.0.0.1:8080/"


@pytest.mark.timeout(60)
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze (package systemd) is needed to check the units"
    units = ("edge.service", "kiosk-browser.service", "edge-update-rollback.service", "edge-update.path",
             "edge-update.service")
    for unit in units:
        shutil.copy(DEPLOY / unit, tmp_path / unit)
    result = subprocess.run([analyze, "verify", "--man=no", *units],
                            cwd=tmp_path, capture_output=True, text=True, timeout=50)
    # The box has /opt/edge and cage; this machine need not. Anything else is a real error.
    problems = [line for line in result.stderr.splitlines()
                if line.strip() and "is not executable: No such file or directory" not in line]
    assert problems == []


def _uncommented_example(tmp_path: Path) -> Path:
    text = (DEPLOY / "edge.toml.example").read_text()
    active = re.sub(r"^# ((\[|[a-z_0-9]+ = ).*)$", r"\1", text, flags=re.MULTILINE)
    path = tmp_path / "edge.toml"
    path.write_text(active)
    return path


def test_every_example_setting_is_a_real_setting(tmp_path: Path) -> None:
    settings = load_settings(_uncommented_example(tmp_path))
    assert settings.locker.serial_url == "/dev/locker-bus"
    assert settings.mqtt.site_id == "dapeng-nanao-01"
    assert settings.locker.compartments[0].size == "S"


def test_the_example_has_every_section() -> None:
    text = (DEPLOY / "edge.toml.example").read_text()
    sections = [name for name, field in Settings.model_fields.items()
                if isinstance(field.default, BaseModel)]
    missing = [name for name in sections if f"\n[{name}]\n" not in text]
    assert sections and missing == []
