"""`fleet dev`: the station, the platform and its console together on 127.0.0.1, for a
laptop (what `./dev run` starts; ADR 0164).

One supervisor process starts, in order, and stops in reverse order:
  1. a private Mosquitto on a free loopback port (simulators.cloud.PrivateBroker);
  2. the platform's schema (`fleet migrate`, in this process) and the demo's org tree: a
     district, a street and a community holding the station, and a staff login whose
     password is new at every start;
  3. `fleet ingest --workers 1`, `fleet console` and the station (`edge run --simulate`)
     as child processes;
  4. once the station reports online, on a platform with no catalogue for it, the demo
     catalogue as the platform's copy, queued as catalogue.sync (the console's sender
     publishes it).
It also runs, in a thread, the part of the reference cloud the platform does not do yet:
joining voice notes (and checking the contract). Its auto-staff is off unless asked for
(`--auto-staff`), so bookings and help requests wait for a decision in the console.

Every child runs in a process group of its own: a terminal's Ctrl-C reaches this process,
which stops the station first, then the console and ingest (and its worker) together, then
the broker; a child that dies stops the whole stack. Nothing is left running.
"""
from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg

DEMO_UNITS = (("大鹏新区", "district"), ("南澳街道", "street"), ("南澳社区", "community"))
DEMO_STAFF = "demo"
DEMO_STAFF_NAME = "演示社工"
START_TIMEOUT_S = 90.0  # each part; a first start compiles and migrates
STOP_TIMEOUT_S = 15.0  # each part, after SIGTERM; then SIGKILL
# The developer's FLEET_* settings that reach the children; the rest (a production database,
# broker credentials) would point the demo elsewhere.
KEPT_FLEET_VARIABLES = ("FLEET_LOG_LEVEL", "FLEET_CONSOLE__SECRET_KEY")


class DevStackError(RuntimeError):
    """The stack cannot start; the message says why in one line."""


# --- the platform's database and the demo's accounts --------------------------------------

def ensure_database(database_url: str) -> bool:
    """Create the URL's database on its server when it does not exist (True when created)."""
    from sqlalchemy.engine import make_url

    from fleet import db as fleet_db

    url = make_url(database_url)
    name = url.database or ""
    admin = fleet_db.conninfo(url.set(database="postgres").render_as_string(hide_password=False))
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                return False
            conn.execute(f'CREATE DATABASE "{name}"')
            return True
    except psycopg.Error as exc:
        raise DevStackError(f"PostgreSQL at {url.host}:{url.port or 5432}: cannot use database "
                            f"{name!r}: {str(exc).strip().splitlines()[0]}") from None


def _unit(conn: psycopg.Connection, name: str, level: str, parent: int | None) -> int:
    from fleet.console import accounts

    row = conn.execute("SELECT id FROM org_units WHERE name = %s AND level = %s AND parent_id IS NOT DISTINCT FROM %s",
                       (name, level, parent)).fetchone()
    return row[0] if row else accounts.add_unit(conn, name, level, parent)


def seed_demo(conn: psycopg.Connection, site_id: str, device_id: str) -> str:
    """The demo's org tree with the station in its community, and the staff login `demo`
    with a new password (returned). Safe to run at every start."""
    from argon2 import PasswordHasher

    from fleet.console import accounts

    password = secrets.token_urlsafe(12)
    with conn.transaction():
        parent = None
        for name, level in DEMO_UNITS:
            parent = _unit(conn, name, level, parent)
        assert parent is not None
        accounts.assign_station(conn, site_id, device_id, parent)
        found = conn.execute("SELECT id FROM staff WHERE username = %s", (DEMO_STAFF,)).fetchone()
        if found is None:
            accounts.add_staff(conn, DEMO_STAFF, DEMO_STAFF_NAME, password, parent)
        else:
            conn.execute("UPDATE staff SET password_hash = %s, org_unit_id = %s, failed_logins = 0, "
                         "locked_until = NULL WHERE id = %s", (PasswordHasher().hash(password), parent, found[0]))
    return password


def publish_catalogue_once(conn: psycopg.Connection, site_id: str, device_id: str, now: datetime,
                           catalogue: Callable[[], dict[str, Any]]) -> str | None:
    """On a platform with no catalogue for the station, `catalogue()` stored as the
    platform's copy and queued as catalogue.sync (what the simulated cloud did when a
    station came online); the version, or None when the platform already had one."""
    from fleet.console import accounts
    from fleet.console.catalogue import save_catalogue

    with conn.transaction():
        if conn.execute("SELECT 1 FROM station_catalogues WHERE site_id = %s AND device_id = %s",
                        (site_id, device_id)).fetchone():
            return None
        row = conn.execute("SELECT id FROM staff WHERE username = %s", (DEMO_STAFF,)).fetchone()
        staff = accounts.staff_by_id(conn, row[0]) if row else None
        if staff is None:
            return None
        return save_catalogue(conn, staff, site_id, device_id, catalogue(), now)


class PrintingNotifier:
    """The demo's SMS: what would be texted is printed on the terminal running `fleet dev`,
    as the simulated cloud did, so a person can try pickup and one-time codes. Never for a
    real platform: FLEET_NOTIFIER is set to it by `fleet dev` only."""

    def notify(self, notification: Any) -> None:
        data, secret = notification.data, notification.secret
        if notification.type == "parcel.deposited":
            text = (f"SMS to {data.get('phone_masked')}: parcel in compartment {data.get('compartment')}, "
                    f"pickup code {secret.get('pickup_code')}")
        elif notification.type == "identity.otp_requested":
            text = f"SMS to resident {data.get('resident_id')}: your code is {secret.get('otp')}"
        else:
            return
        print(f"[platform] {text}", flush=True)


# --- child processes -------------------------------------------------------------------------

@dataclass
class Child:
    """One part of the stack as a process in a group of its own (its own children too)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> "Child":
        self.process = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL, process_group=0)
        return self

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM to the whole group, SIGKILL to what is left after `timeout`."""
        self.terminate()
        self.wait_gone(time.monotonic() + timeout)

    def terminate(self) -> None:
        if self.process is not None:
            self._signal(self.process.pid, signal.SIGTERM)

    def wait_gone(self, deadline: float) -> None:
        """Wait until no process of the group is left; SIGKILL the group at `deadline`."""
        if self.process is None:
            return
        group = self.process.pid
        while time.monotonic() < deadline:
            self.process.poll()
            if not self._group_alive(group):
                break
            time.sleep(0.05)
        else:
            self._signal(group, signal.SIGKILL)
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            pass

    @staticmethod
    def _signal(group: int, signum: int) -> None:
        try:
            os.killpg(group, signum)
        except ProcessLookupError:
            pass

    @staticmethod
    def _group_alive(group: int) -> bool:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
        return True
    except OSError:
        return False


# --- the supervisor ------------------------------------------------------------------------

@dataclass
class DevStack:
    database_url: str
    http_port: int = 8080
    console_port: int = 8090
    auto_staff: bool = False
    out: Callable[[str], None] = field(default=lambda line: print(line, flush=True))
    children: list[Child] = field(default_factory=list)

    def run(self, stop: threading.Event) -> int:
        """Start everything, wait for `stop` (or a part dying), stop everything. 0 when
        stopped on request, 1 when a part failed."""
        self._cleanups: list[Callable[[], None]] = []
        try:
            try:
                self._start(stop)
            except DevStackError as exc:
                self.out(f"dev: {exc}")
                return 1
            if stop.is_set():
                return 0
            self.out("dev: ready; Ctrl-C stops everything")
            while not stop.wait(0.2):
                for child in self.children:
                    if child.exited() is not None:
                        self.out(f"dev: {child.name} exited ({child.exited()}); stopping everything")
                        return 1
            return 0
        finally:
            self._stop_all()

    def _start(self, stop: threading.Event) -> None:
        from edge.files import lock_down_data_dir
        from edge.settings import SettingsError, load_settings
        from fleet import db as fleet_db
        from simulators.cloud import CloudSimulator, PrivateBroker, ensure_platform_keys, load_catalogue, \
            simulated_platform_key

        try:
            edge = load_settings(simulate=True)
        except SettingsError as exc:
            raise DevStackError(f"edge settings: {exc}") from None
        if edge.mqtt.host:
            raise DevStackError("EDGE_MQTT__HOST is set: `fleet dev` runs its own broker; unset it")
        site_id, device_id = edge.mqtt.site_id, edge.mqtt.device_id
        if not PrivateBroker.available():
            raise DevStackError("Mosquitto is not installed (apt-get install mosquitto)")

        # The station seals pickup and one-time codes to the simulated platform key under its
        # data folder; the platform opens them with the private half, handed over in a 0600 file.
        lock_down_data_dir(edge.data_dir)
        public_key = ensure_platform_keys(edge.keys_dir)
        from cryptography.hazmat.primitives import serialization

        private = simulated_platform_key(edge.keys_dir).private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        secrets_dir = Path(tempfile.mkdtemp(prefix="fleet-dev-"))
        self._cleanups.append(lambda: _remove_tree(secrets_dir))
        key_file = secrets_dir / "platform_x25519.key"
        key_file.write_text(base64.b64encode(private).decode())
        key_file.chmod(0o600)

        broker = PrivateBroker()
        broker.start()
        self._cleanups.append(broker.stop)

        ensure_database(self.database_url)
        fleet_db.upgrade(self.database_url)
        with fleet_db.connect(self.database_url) as conn:
            password = seed_demo(conn, site_id, device_id)

        # What the platform does not do yet: join voice notes (ADR 0164). Auto-staff only on request.
        cloud = CloudSimulator.for_demo(broker.host, broker.port, auto_staff=self.auto_staff,
                                        client_id=f"fleet-dev-{secrets.token_hex(3)}").start()
        self._cleanups.append(cloud.stop)

        python = sys.executable
        base_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        fleet_env = {**{k: v for k, v in base_env.items() if not k.startswith("FLEET_") or k in KEPT_FLEET_VARIABLES},
                     "FLEET_DATABASE_URL": self.database_url, "FLEET_MQTT__HOST": broker.host,
                     "FLEET_MQTT__PORT": str(broker.port), "FLEET_PLATFORM_PRIVATE_KEY_FILE": str(key_file),
                     "FLEET_NOTIFIER": "fleet.devstack:PrintingNotifier"}
        edge_env = {**base_env, "EDGE_MQTT__HOST": broker.host, "EDGE_MQTT__PORT": str(broker.port),
                    "EDGE_MQTT__PLATFORM_PUBLIC_KEY": public_key, "EDGE_HTTP__PORT": str(self.http_port)}
        kiosk = f"http://127.0.0.1:{self.http_port}/"
        console = f"http://127.0.0.1:{self.console_port}/"
        # Ingest first: it subscribes while the station is still starting (an event published
        # before that is a gap, replayed by ingest's outbox.replay). The three start together.
        self._child("ingest", [python, "-m", "fleet", "ingest", "--workers", "1"], fleet_env)
        self._child("console", [python, "-m", "fleet", "console", "--port", str(self.console_port)], fleet_env)
        self._child("station", [python, "-m", "edge", "run", "--simulate"], edge_env)
        if not (self._wait(stop, lambda: _answers(kiosk + "healthz"), "the station's web app")
                and self._wait(stop, lambda: _online(cloud, (site_id, device_id)), "the station online")
                and self._wait(stop, lambda: _answers(console + "login"), "the console")):
            return
        # Queued only now that the station listens: the console's sender publishes it within a second.
        with fleet_db.connect(self.database_url) as conn:
            publish_catalogue_once(conn, site_id, device_id, datetime.now(timezone.utc),
                                   lambda: load_catalogue(None, site_id))
        self.out(f"dev: station (kiosk)  {kiosk}")
        self.out(f"dev: platform console {console}  staff login: {DEMO_STAFF} / {password}")
        self.out(f"dev: station {site_id}/{device_id} in {' > '.join(n for n, _ in DEMO_UNITS)}; "
                 f"broker 127.0.0.1:{broker.port}; auto-staff "
                 f"{'on: bookings and requests are decided by rule' if self.auto_staff else 'off: bookings wait for a decision in the console'}")

    def _child(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        child = Child(name, argv, env).start()
        self.children.append(child)
        return child

    def _wait(self, stop: threading.Event, ready: Callable[[], bool], what: str) -> bool:
        """True once `ready()`; False when asked to stop meanwhile; DevStackError when a part
        dies or it takes too long."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            for child in self.children:
                if child.exited() is not None:
                    raise DevStackError(f"{child.name} exited ({child.exited()}) while waiting for {what}")
            if stop.wait(0.1):
                return False
            if time.monotonic() > deadline:
                raise DevStackError(f"{what} did not come up in {START_TIMEOUT_S:.0f} s")
        return True

    def _stop_all(self) -> None:
        """The station first (its last words reach a running platform), then the other
        children together, then the broker and the rest; a part that fails to stop does
        not keep the others running."""
        def attempt(step: Callable[[], None]) -> None:
            try:
                step()
            except Exception as exc:  # noqa: BLE001  (stopping goes on whatever one part says)
                self.out(f"dev: stopping: {exc}")

        station = [child for child in self.children if child.name == "station"]
        others = [child for child in self.children if child.name != "station"]
        for child in station:
            attempt(child.stop)
        for child in others:
            attempt(child.terminate)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in others:
            attempt(lambda child=child: child.wait_gone(deadline))  # type: ignore[misc]
        for cleanup in reversed(self._cleanups):
            attempt(cleanup)
        self.out("dev: stopped")


def _online(cloud: Any, device: tuple[str, str]) -> bool:
    log = cloud.devices.get(device)
    return bool(log and log.status and log.status.get("data", {}).get("online"))


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def stop_on_signals() -> threading.Event:
    """SIGINT (Ctrl-C), SIGTERM and SIGHUP (the terminal closed) all stop the stack."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    return stop
