"""The station's own self-test checks beside the locker's (edge/locker/diagnostics.py): the
cloud link and last PUBACK, the outbox backlog, clock synchronisation, each camera, the iris
key file. The same answers for `edge diag selftest` and the cloud's `diag.run` command.

Each check is {"check", "ok", "detail"}; details are plain English figures whatever the
controller's locale (the CLI names the checks in the technician's language); ok is None when the box cannot tell (no
timedatectl nor chrony, a controller that is not running): "unknown" is not a failure."""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

from sqlalchemy import func, select

from edge.storage import Database, OutboxEvent

Check = dict[str, Any]
PUBACK_STALE = timedelta(minutes=15)  # events waiting and no PUBACK for this long: the link is not draining
BACKLOG_WARN_SHARE = 0.8  # of the outbox budget (rows or bytes): near the point telemetry is dropped


def check(name: str, ok: Optional[bool], detail: str) -> Check:
    return {"check": name, "ok": ok, "detail": detail}


def cloud_link(broker_in_use: bool, connected: Optional[bool]) -> Check:
    """connected None: the controller (which holds the MQTT session) is not running."""
    if not broker_in_use:
        return check("cloud link", None, "no broker configured: events wait in the outbox")
    if connected is None:
        return check("cloud link", None, "the controller is not running")
    return check("cloud link", connected, "connected" if connected else "not connected to the broker")


def outbox_checks(db: Database, now: datetime, tz_name: str, broker_in_use: bool) -> list[Check]:
    """Last PUBACK (the newest row the broker acknowledged) and the backlog against its budget."""
    from edge.diag_text import age_words, local_time
    from edge.storage.outbox import OutboxStats

    with db.read() as s:
        last_ack = s.scalar(select(func.max(OutboxEvent.published_at)))
        oldest = s.scalar(select(func.min(OutboxEvent.ts)).where(OutboxEvent.published_at.is_(None)))
        stats = s.get(OutboxStats, 1)
    rows, size = (stats.pending_rows, stats.pending_bytes) if stats else (0, 0)
    if last_ack is None:
        puback = check("last PUBACK", None if rows == 0 or not broker_in_use else False, "never")
    else:
        last_ack = last_ack.replace(tzinfo=timezone.utc) if last_ack.tzinfo is None else last_ack
        stale = rows > 0 and broker_in_use and now - last_ack > PUBACK_STALE
        ago = age_words((now - last_ack).total_seconds(), chinese=False)
        puback = check("last PUBACK", not stale, f"{local_time(last_ack, tz_name)} ({ago} ago)")
    detail = f"{rows} events, {size // 1024} KiB waiting"
    if oldest is not None:
        oldest = oldest.replace(tzinfo=timezone.utc) if oldest.tzinfo is None else oldest
        detail += f", oldest {age_words((now - oldest).total_seconds(), chinese=False)}"
    near_full = bool(stats) and (rows > BACKLOG_WARN_SHARE * stats.max_rows
                                 or size > BACKLOG_WARN_SHARE * stats.max_bytes)
    return [puback, check("outbox backlog", not near_full, detail)]


Runner = Callable[[list[str]], Optional[str]]


def _run_tool(argv: list[str]) -> Optional[str]:
    """A tool's stdout, or None when it is absent or fails (no systemd in a container)."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def clock_synchronised(run: Runner = _run_tool) -> Check:
    """timedatectl's NTPSynchronized, else chrony's leap status, else "unknown"."""
    answer = run(["timedatectl", "show", "--property=NTPSynchronized", "--value"])
    if answer is not None and answer.strip() in ("yes", "no"):
        synced = answer.strip() == "yes"
        return check("clock synchronised", synced, f"timedatectl: NTPSynchronized={answer.strip()}")
    answer = run(["chronyc", "-n", "tracking"])
    if answer is not None:
        for line in answer.splitlines():
            if line.startswith("Leap status"):
                status = line.split(":", 1)[1].strip()
                return check("clock synchronised", status == "Normal", f"chrony: leap status {status}")
    return check("clock synchronised", None, "unknown: neither timedatectl nor chrony answers")


def camera_check(purpose: str, probe: Optional[Callable[[], Optional[str]]], simulated: bool = False) -> Check:
    """probe() reads one frame and returns its size ("640x480"), or None when none came."""
    name = f"{purpose} camera"
    if probe is None:
        return check(name, None, "none configured")
    try:
        size = probe()
    except Exception as exc:  # noqa: BLE001 - a broken driver is this check's finding
        return check(name, False, f"error: {exc}")
    if size is None:
        return check(name, False, "no frame (unplugged, busy or wrong device)")
    return check(name, True, f"frame {size}" + (" (simulated)" if simulated else ""))


def frame_size(camera: Any) -> Optional[str]:
    frame = camera.read()
    return None if frame is None else f"{frame.shape[1]}x{frame.shape[0]}"


def key_file(path: Path) -> Check:
    """The iris template key: present, private, not empty (losing it loses every template)."""
    name = f"key {path.name}"
    if not path.is_file():
        return check(name, None, f"{path} not created yet")
    mode = os.stat(path).st_mode & 0o777
    return check(name, mode & 0o077 == 0 and path.stat().st_size > 0,
                 f"mode {mode:o}, {path.stat().st_size} bytes")


def broker_in_use(settings: Any, running_simulated: bool = False) -> bool:
    return bool(settings.mqtt.host) or running_simulated


def controller_checks(controller: Any) -> list[Check]:
    """The station checks from inside the running controller (its bridge and cameras)."""
    settings, services = controller.settings, controller.services
    bridge = services.bridge  # present offline too: it then only keeps the outbox
    in_use = bridge is not None and broker_in_use(settings, controller.simulation is not None)
    checks = [cloud_link(in_use, bridge.connected.is_set() if in_use else None)]
    checks += outbox_checks(controller.db, controller.clock.now(), settings.site.timezone, in_use)
    checks.append(clock_synchronised())
    simulated = controller.simulation is not None
    scanner = services.qr_scanner
    checks.append(camera_check("qr", scanner.camera_check if hasattr(scanner, "camera_check") else None,
                               simulated))
    iris = services.iris
    checks.append(camera_check("iris", iris.camera_check if iris is not None and iris.has_camera else None,
                               simulated))
    checks.append(key_file(settings.identity.iris_key_file or settings.keys_dir / "iris.key"))
    return checks


def offline_checks(settings: Any, db_path: Path, camera_for: Callable[[str], Any]) -> list[Check]:
    """The station checks while no controller runs (`edge diag` owns the bus); camera_for
    ("qr" or "iris") gives a camera to read one frame from, or None."""
    db = Database(db_path)
    try:
        in_use = broker_in_use(settings, settings.simulate)
        checks = [cloud_link(in_use, None)]
        checks += outbox_checks(db, datetime.now(timezone.utc), settings.site.timezone, in_use)
    finally:
        db.dispose()
    checks.append(clock_synchronised())
    for purpose in ("qr", "iris"):
        camera = camera_for(purpose)
        if camera is None:
            checks.append(camera_check(purpose, None))
            continue
        try:
            checks.append(camera_check(purpose, lambda: frame_size(camera), settings.simulate))
        finally:
            camera.close()
    checks.append(key_file(settings.identity.iris_key_file or settings.keys_dir / "iris.key"))
    return checks


def station_selftest(controller: Any) -> list[Check]:
    """Every check of the running controller: the locker's, then the station's."""
    locker = controller.services.locker_diagnostics
    return (locker.selftest() if locker is not None else []) + controller_checks(controller)


def diag_run_handler(controller: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """`diag.run`: the cloud asks for a self-test (stations sit behind NAT, nobody can SSH in
    from the operations centre). Runs outside the command's transaction: it reads the
    database and cameras itself. ok_all is False only on a failed check, not an unknown one."""

    def run(_data: dict[str, Any]) -> dict[str, Any]:
        checks = station_selftest(controller)
        return {"test": "selftest", "ok_all": all(c["ok"] is not False for c in checks), "checks": checks}

    return run
