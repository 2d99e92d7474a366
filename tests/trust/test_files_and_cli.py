"""Data folder modes whoever starts `edge run` (item 2), `edge diag --json` output that is
only JSON (item 8), EDGE_LOCKER__CLOSED_BIT=0 from the environment (item 8), and
`edge diag security` (item 9)."""
from __future__ import annotations

import json
import os
import stat

import pytest
from typer.testing import CliRunner

from edge.cli import app as cli
from edge.settings import load_settings
from tests.support.process import ControllerProcess

pytestmark = pytest.mark.timeout(90)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_edge_run_makes_the_data_folder_0700_and_its_files_0600(tmp_path, sim):
    data_dir = tmp_path / "data"
    (data_dir / "keys").mkdir(parents=True)
    os.chmod(data_dir, 0o755)
    (data_dir / "keys" / "left-over.key").write_bytes(b"x" * 32)
    os.chmod(data_dir / "keys" / "left-over.key", 0o644)
    previous = os.umask(0o022)  # a login shell's umask, as outside systemd
    try:
        controller = ControllerProcess(data_dir, sim.url).start()
    finally:
        os.umask(previous)
    try:
        controller.login()  # the API credential exists and works; the database has written
        files = [p for p in data_dir.rglob("*") if p.is_file()]
        names = {p.name for p in files}
        assert {"edge.sqlite3", "edge.sqlite3-wal", "edge.sqlite3-shm", "api.token",
                "pickup_code.key", "left-over.key"} <= names
        assert mode(data_dir) == 0o700 and mode(data_dir / "keys") == 0o700
        assert {p.name: oct(mode(p)) for p in files if mode(p) != 0o600} == {}
        security = CliRunner().invoke(cli, ["diag", "security", "--json"], env={"EDGE_DATA_DIR": str(data_dir)})
        checks = {c["check"]: c for c in json.loads(security.stdout)}
        assert checks["file modes"]["ok"] and checks["local API credential"]["ok"], checks
        assert checks["platform key"]["ok"]
    finally:
        controller.stop()


def test_diag_security_names_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGE_MQTT__PLATFORM_PUBLIC_KEY")
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    result = CliRunner().invoke(cli, ["diag", "security", "--json"], env={
        "EDGE_DATA_DIR": str(data_dir), "EDGE_MQTT__HOST": "mqtt.platform.example",
        "EDGE_MQTT__INSECURE_PLAINTEXT": "true", "EDGE_MQTT__PLATFORM_PUBLIC_KEY": "",
    })
    assert result.exit_code != 0
    # no platform key with a broker set is a settings error: one line, exit 2
    assert result.exit_code == 2 and "platform_public_key" in result.output
    from tests.support.platform import PLATFORM_PUBLIC_KEY

    result = CliRunner().invoke(cli, ["diag", "security", "--json"], env={
        "EDGE_DATA_DIR": str(data_dir), "EDGE_MQTT__HOST": "mqtt.platform.example",
        "EDGE_MQTT__INSECURE_PLAINTEXT": "true", "EDGE_MQTT__PLATFORM_PUBLIC_KEY": PLATFORM_PUBLIC_KEY,
    })
    assert result.exit_code == 1
    checks = {c["check"]: c for c in json.loads(result.stdout)}
    assert not checks["file modes"]["ok"] and str(data_dir) in checks["file modes"]["detail"]
    assert not checks["local API credential"]["ok"]
    assert checks["platform key"]["ok"]
    assert not checks["broker TLS"]["ok"] and "PLAIN TEXT" in checks["broker TLS"]["detail"]
    assert not checks["broker credentials"]["ok"]


def test_closed_bit_0_from_the_environment_is_accepted(monkeypatch):
    monkeypatch.setenv("EDGE_LOCKER__CLOSED_BIT", "0")
    assert load_settings().locker.closed_bit == 0
    monkeypatch.setenv("EDGE_LOCKER__CLOSED_BIT", "2")
    with pytest.raises(Exception, match="closed_bit"):
        load_settings()


def test_diag_doors_json_on_a_fresh_data_folder_prints_only_json(tmp_path, sim):
    env = {"EDGE_DATA_DIR": str(tmp_path / "fresh"), "EDGE_LOCKER__SERIAL_URL": sim.url,
           "EDGE_LOCKER__BOARDS": "0,1", "EDGE_LOCKER__REPLY_TIMEOUT_S": "0.05"}
    result = CliRunner().invoke(cli, ["diag", "doors", "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # what `| jq` reads: nothing but the JSON
    assert len(report["compartments"]) == 32
    assert "key file created" in result.stderr  # the log lines went to stderr
