"""The cloud asks a station for its self-test (`diag.run`) over a real Mosquitto, and a
technician's `edge diag iris` / `edge diag scan` / `selftest` reach the simulated cameras of
a running simulated station."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cloud_bridge import contract
from edge.cli import app
from tests.support.cli import logs_on_stderr, serving  # noqa: F401 - fixture
from tests.support.bridge import DEVICE, SITE, device_log

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(120), pytest.mark.usefixtures("logs_on_stderr")]
EDGE = (SITE, DEVICE)
runner = CliRunner()


@pytest.fixture
def served(controller):
    with serving(controller) as port:
        yield {"EDGE_DATA_DIR": str(controller.settings.data_dir), "EDGE_HTTP__PORT": str(port),
               "EDGE_SIMULATE": "0", "LANG": "en_US.UTF-8"}


def online(cloud) -> bool:
    return (device_log(cloud).status or {}).get("data", {}).get("online") is True


def test_the_cloud_asks_for_a_selftest_and_the_reply_carries_every_check(controller, cloud):
    assert cloud.wait_for(lambda: online(cloud), 30)
    asked = cloud.send_command(EDGE, "diag.run", {"test": "selftest"})

    [reply] = cloud.wait_reply(asked, timeout=60)

    assert reply["ok"] is True, reply
    contract.validate("reply", reply)
    checks = {c["check"]: c for c in reply["data"]["checks"]}
    assert checks["cloud link"] == {"check": "cloud link", "ok": True, "detail": "connected"}
    assert checks["last PUBACK"]["detail"] == "never"  # nothing went through the outbox yet
    assert checks["outbox backlog"]["ok"] is True
    assert checks["qr camera"]["ok"] is True and "(simulated)" in checks["qr camera"]["detail"]
    assert checks["iris camera"]["ok"] is True and "640x480" in checks["iris camera"]["detail"]
    assert checks["board 0 reachable"]["ok"] is True and "clock synchronised" in checks
    assert reply["data"]["ok_all"] is all(c["ok"] is not False for c in checks.values())
    assert cloud.violations == []

    # the first reply went through the outbox: once the broker has acknowledged it, a second
    # self-test names that PUBACK
    assert cloud.wait_for(lambda: last_puback(controller) is not None, 30)
    [again] = cloud.wait_reply(cloud.send_command(EDGE, "diag.run", {}), timeout=60)
    puback = next(c for c in again["data"]["checks"] if c["check"] == "last PUBACK")
    assert puback["ok"] is True and puback["detail"] != "never"


def last_puback(controller):
    from sqlalchemy import func, select

    from edge.storage import OutboxEvent

    with controller.db.read() as s:
        return s.scalar(select(func.max(OutboxEvent.published_at)))


def test_a_selftest_command_with_an_unknown_test_is_refused(controller, cloud):
    assert cloud.wait_for(lambda: online(cloud), 30)
    asked = cloud.send_command(EDGE, "diag.run", {"test": "format-disk"})
    [reply] = cloud.wait_reply(asked, timeout=30)
    assert reply["ok"] is False and reply["error"]["code"] == "invalid"


def test_diag_iris_and_scan_use_the_simulated_cameras_of_a_running_simulated_station(served):
    iris = runner.invoke(app, ["diag", "iris", "--json"], env=served)
    assert iris.exit_code == 0, iris.output
    report = json.loads(iris.stdout)
    assert report["frame"] == "640x480" and report["capture_ms"] >= 0

    scan = runner.invoke(app, ["diag", "scan", "--frames", "2", "--json"], env=served)
    assert scan.exit_code == 0, scan.output
    assert [row["codes"] for row in json.loads(scan.stdout)] == [["EDGE-DIAG-SCAN"], ["EDGE-DIAG-SCAN"]]

    selftest = runner.invoke(app, ["diag", "selftest", "--json"], env=served)
    checks = {c["check"]: c for c in json.loads(selftest.stdout)}
    assert checks["iris camera"]["ok"] is True and checks["qr camera"]["ok"] is True


def test_without_a_running_station_diag_iris_still_says_no_camera(tmp_path):
    bare = {"EDGE_DATA_DIR": str(tmp_path / "none"), "EDGE_SIMULATE": "0", "LANG": "en_US.UTF-8"}
    result = runner.invoke(app, ["diag", "iris"], env=bare)
    assert result.exit_code == 2 and "no iris camera configured" in result.output
