"""Updates end to end: two release bundles built here from this very source tree (the real
project wheel, signed), installed under a temporary prefix, restarted by a stand-in for
systemctl that runs edge.service's steps. A good release is marked good; a release whose
health check fails (and that migrated the database) is rolled back to the previous one,
which then runs on the newer schema. Bad signatures and altered wheels are refused."""
from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.ops.update import make_bundle
from tests.support.ports import free_port
from tests.support.release import build_wheel

pytestmark = pytest.mark.timeout(600)
FAKE_SYSTEMCTL = Path(__file__).with_name("fake_systemctl.py")


@pytest.fixture
def station(tmp_path: Path):
    """The environment every process of the station gets (edge.service's EnvironmentFile)."""
    key = Ed25519PrivateKey.generate()
    public = tmp_path / "release.pub.pem"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    systemd = tmp_path / "systemd"
    systemd.mkdir()
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("EDGE_")}
    env.update(
        EDGE_DATA_DIR=str(tmp_path / "data"), EDGE_SIMULATE="true", EDGE_HTTP__PORT=str(port),
        EDGE_UPDATE__PREFIX=str(tmp_path / "opt-edge"), EDGE_UPDATE__PUBLIC_KEY=str(public),
        EDGE_UPDATE__RESTART_COMMAND=f"{sys.executable} {FAKE_SYSTEMCTL} restart --no-block edge.service",
        EDGE_UPDATE__HEALTH_DEADLINE_S="25",
        # The bundles here carry only the project's wheel; its dependencies come from this venv.
        EDGE_UPDATE__SHARED_SITE_PACKAGES=json.dumps([sysconfig.get_paths()["purelib"]]),
        FAKE_SYSTEMD_DIR=str(systemd), JOURNAL_STREAM="")
    yield {"env": env, "key": key, "port": port, "prefix": tmp_path / "opt-edge", "systemd": systemd,
           "data": tmp_path / "data"}
    pid_file = systemd / "edge.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except ProcessLookupError:
            pass


def edge(station, *args: str, binary: str | None = None) -> subprocess.CompletedProcess:
    command = [binary, *args] if binary else [sys.executable, "-m", "edge", *args]
    return subprocess.run(command, env=station["env"], capture_output=True, text=True, timeout=600)


def parts(station) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{station['port']}/healthz/parts", timeout=5) as reply:
            return json.load(reply)
    except OSError as exc:
        body = getattr(exc, "read", lambda: b"{}")()
        try:
            return json.loads(body or b"{}")
        except ValueError:
            return {}


def state(station) -> dict:
    return json.loads((station["prefix"] / "state.json").read_text())


def wait_for(predicate, timeout: float, what: str, station) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    journal = (station["systemd"] / "journal.txt")
    raise AssertionError(f"timed out waiting for {what}; fake systemd journal:\n"
                         + (journal.read_text() if journal.exists() else "(empty)"))


def current(station) -> str:
    return os.readlink(station["prefix"] / "current")


def test_a_good_release_is_kept_and_a_broken_one_rolls_back(station, tmp_path: Path) -> None:
    good = make_bundle([build_wheel(tmp_path, "1.0.1")], "1.0.1", station["key"], tmp_path / "good.tar.gz")
    broken = make_bundle([build_wheel(tmp_path, "1.0.2", broken=True)], "1.0.2", station["key"],
                         tmp_path / "broken.tar.gz")

    installed = edge(station, "update", str(good))
    assert installed.returncode == 0, installed.stderr
    wait_for(lambda: state(station)["pending"] is None and parts(station).get("version") == "1.0.1",
             240, "1.0.1 running and marked good", station)
    assert current(station) == "releases/1.0.1"
    assert parts(station)["parts"] == {"database": True, "lock_bus": True, "mqtt": True}
    assert [step["what"] for step in state(station)["history"]] == ["installed", "marked_good"]

    # The running release installs the next one, as `edge update BUNDLE` on the box would.
    new_release = edge(station, "update", str(broken),
                       binary=str(station["prefix"] / "current" / "venv" / "bin" / "edge"))
    assert new_release.returncode == 0, new_release.stderr
    back = {"version": "1.0.1", "ok": True}
    wait_for(lambda: state(station).get("bad") == ["1.0.2"]
             and {k: parts(station).get(k) for k in back} == back,
             300, "1.0.2 rolled back and 1.0.1 running again, healthy", station)
    assert current(station) == "releases/1.0.1" and os.readlink(station["prefix"] / "previous") == "releases/1.0.1"
    journal = (station["systemd"] / "journal.txt").read_text()
    assert "mark-good 1.0.2 rc=2" in journal and "not healthy within 25 s (http)" in journal
    # The broken release migrated the database; the rollback left the schema as it was.
    with sqlite3.connect(station["data"] / "edge.sqlite3") as raw:
        assert raw.execute("SELECT version_num FROM alembic_version").fetchone() == ("0099_update_probe",)
    status = edge(station, "update", "status")
    assert "current: 1.0.1" in status.stdout and "rolled_back" in status.stdout


def test_a_bad_signature_or_an_altered_wheel_is_refused(station, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "1.0.3")
    forged = make_bundle([wheel], "1.0.3", Ed25519PrivateKey.generate(), tmp_path / "forged.tar.gz")
    refused = edge(station, "update", str(forged))
    assert refused.returncode == 2
    assert refused.stderr.strip() == "edge: the bundle's signature does not verify with update.public_key"

    signed = make_bundle([wheel], "1.0.3", station["key"], tmp_path / "signed.tar.gz")
    altered = tmp_path / "altered.tar.gz"
    with tarfile.open(signed) as source, tarfile.open(altered, "w:gz") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name.endswith(".whl"):
                data = data[:-1] + bytes([data[-1] ^ 1])
            target.addfile(member, io.BytesIO(data))
    refused = edge(station, "update", str(altered))
    assert refused.returncode == 2 and "checksum mismatch for wheels/" in refused.stderr
    assert not (station["prefix"] / "releases").exists() and not (station["prefix"] / "current").exists()
