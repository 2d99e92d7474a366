"""Release bundles, installed beside the running release, kept only once healthy (ADR 0151).

A bundle is a tar holding `manifest.json` (version, SHA-256 of every other file), its
Ed25519 signature `manifest.sig`, and `wheels/*.whl` built offline. Installing one:

1. verify the signature with update.public_key, then every file's checksum; refuse any file
   the manifest does not list (nothing is unpacked before all of this passes);
2. unpack into <prefix>/releases/<version>/, make its own venv there and install the wheels
   with pip, offline and without a resolver (--no-index --no-deps: the bundle is complete);
3. point `previous` at the running release and `current` at the new one (each an atomic
   symlink swap), note the release as *pending* in <prefix>/state.json, and ask for a
   restart (update.restart_command, by default a non-blocking systemctl restart);
4. the new process's `edge update mark-good --wait` (edge.service's ExecStartPost) polls
   the controller's /healthz/parts until the web server, the database, the lock bus and
   (when configured) MQTT are all healthy, then clears *pending*. Past update.health_deadline_s
   it rolls back itself; if it never gets to run (a crash before READY), systemd's
   OnFailure= unit runs `edge update rollback` from the previous release.

Rollback only moves the symlinks back and restarts: it never touches the database, which is
why migrations are expand/contract (ADR 0151) and an older release starts on a newer schema.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.logs import get_logger

log = get_logger("edge.update")

MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")
_WHEEL_NAME = re.compile(r"^wheels/[A-Za-z0-9_.+-]+\.whl$")
KEEP_RELEASES = 3  # current, previous, and one more to fall back on by hand


class UpdateError(Exception):
    """An update could not be done; the message says why in one line."""


# --- bundles ------------------------------------------------------------------------------

def make_bundle(wheels: list[Path], version: str, signing_key: Ed25519PrivateKey, target: Path) -> Path:
    """Write a signed release bundle (the release engineer's side; tests build theirs so)."""
    files = {f"wheels/{wheel.name}": wheel.read_bytes() for wheel in wheels}
    manifest = json.dumps({"format": 1, "version": version,
                           "created": datetime.now(timezone.utc).isoformat(),
                           "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}},
                          indent=1, sort_keys=True).encode()
    with tarfile.open(target, "w:gz") as tar:
        for name, data in [(MANIFEST, manifest), (SIGNATURE, signing_key.sign(manifest)), *files.items()]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return target


def load_public_key(path: Path | None) -> Ed25519PublicKey:
    if path is None:
        raise UpdateError("no update.public_key set: bundles cannot be verified, so none is installed")
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise UpdateError(f"cannot read update.public_key {path}: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UpdateError(f"update.public_key {path} is not an Ed25519 public key")
    return key


@dataclass(frozen=True)
class VerifiedBundle:
    version: str
    manifest: dict[str, Any]
    files: dict[str, bytes]  # wheels/NAME.whl -> bytes, every checksum checked


def verify_bundle(path: Path, public_key: Ed25519PublicKey) -> VerifiedBundle:
    """Signature first, then each file against the signed manifest; UpdateError otherwise."""
    try:
        with tarfile.open(path, "r:*") as tar:
            members = {m.name: m for m in tar.getmembers()}
            if any(not m.isfile() for m in members.values()):
                raise UpdateError("the bundle holds something other than plain files")
            if MANIFEST not in members or SIGNATURE not in members:
                raise UpdateError("not a release bundle: no manifest.json and manifest.sig")
            read = lambda name: tar.extractfile(members[name]).read()  # noqa: E731
            manifest_bytes, signature = read(MANIFEST), read(SIGNATURE)
            try:
                public_key.verify(signature, manifest_bytes)
            except InvalidSignature:
                raise UpdateError("the bundle's signature does not verify with update.public_key") from None
            manifest = json.loads(manifest_bytes)
            listed = manifest.get("files", {})
            others = set(members) - {MANIFEST, SIGNATURE}
            if others != set(listed):
                raise UpdateError("the bundle's files do not match its manifest")
            files = {}
            for name in sorted(others):
                if not _WHEEL_NAME.match(name):
                    raise UpdateError(f"the bundle holds an unexpected file {name!r}")
                data = read(name)
                if hashlib.sha256(data).hexdigest() != listed[name]:
                    raise UpdateError(f"checksum mismatch for {name}: the bundle was altered")
                files[name] = data
    except (tarfile.TarError, OSError, ValueError, KeyError) as exc:
        raise UpdateError(f"cannot read the bundle {path}: {exc}") from None
    version = str(manifest.get("version", ""))
    if not _VERSION.match(version):
        raise UpdateError(f"the bundle names a bad version {version!r}")
    if not files:
        raise UpdateError("the bundle holds no wheels")
    return VerifiedBundle(version, manifest, files)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- the releases on the box ----------------------------------------------------------------

class Releases:
    """<prefix>/releases/<version>/ (wheels/, venv/), `current` and `previous` links, and
    state.json: {"pending": version awaiting its health check, "bad": [...], "history": [...]}."""

    def __init__(self, prefix: Path, *, restart_command: str, python: str | None = None,
                 shared_site_packages: list[Path] | None = None) -> None:
        self.prefix = Path(prefix)
        self.restart_command = restart_command
        self.python = python or sys.executable
        self.shared_site_packages = shared_site_packages or []

    # layout
    @property
    def releases_dir(self) -> Path:
        return self.prefix / "releases"

    def link(self, name: str) -> Path:
        return self.prefix / name

    def version_of(self, name: str) -> str | None:
        link = self.link(name)
        return os.readlink(link).rsplit("/", 1)[-1] if link.is_symlink() else None

    def state(self) -> dict[str, Any]:
        try:
            return json.loads((self.prefix / "state.json").read_text())
        except FileNotFoundError:
            return {"pending": None, "bad": [], "history": []}

    def _save(self, state: dict[str, Any]) -> None:
        temp = self.prefix / "state.json.tmp"
        temp.write_text(json.dumps(state, indent=1))
        os.replace(temp, self.prefix / "state.json")

    def _note(self, state: dict[str, Any], what: str, version: str | None) -> None:
        state.setdefault("history", []).append(
            {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "what": what, "version": version})
        state["history"] = state["history"][-50:]

    # install
    def install(self, bundle: VerifiedBundle, *, restart: bool = True) -> str:
        version = bundle.version
        if version == self.version_of("current"):
            raise UpdateError(f"release {version} is already the current one")
        if self.state().get("pending"):
            raise UpdateError(f"release {self.state()['pending']} is still being checked; wait, or run "
                              "`edge update rollback`")
        self.releases_dir.mkdir(parents=True, exist_ok=True)
        # Built in place (a venv cannot be moved: its scripts name its interpreter's path);
        # nothing points at it until the `current` link is swapped below.
        target = self.releases_dir / version
        shutil.rmtree(target, ignore_errors=True)  # a release tried before: replaced whole
        try:
            self._unpack_and_build(bundle, target)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        state = self.state()
        state["pending"], state["pending_starts"] = version, 0
        self._note(state, "installed", version)
        self._save(state)
        previous = self.version_of("current")
        if previous is not None:
            self._point("previous", previous)
        self._point("current", version)
        log.info("update_installed", version=version, previous=previous)
        self._prune()
        if restart:
            self.restart()
        return version

    def _unpack_and_build(self, bundle: VerifiedBundle, folder: Path) -> None:
        wheels = folder / "wheels"
        wheels.mkdir(parents=True)
        for name, data in bundle.files.items():
            (folder / name).write_bytes(data)
        (folder / MANIFEST).write_text(json.dumps(bundle.manifest, indent=1))
        venv = folder / "venv"
        _run([self.python, "-m", "venv", str(venv)], "create the release's venv")
        if self.shared_site_packages:  # a shared dependency layer, seen after the venv's own
            site = next((venv / "lib").glob("python3*/site-packages"))
            (site / "edge-shared-layer.pth").write_text(
                "".join(f"{path}\n" for path in self.shared_site_packages))
        _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
              "--disable-pip-version-check", *sorted(str(w) for w in wheels.glob("*.whl"))],
             "install the release's wheels")
        _run([str(venv / "bin" / "edge"), "--help"], "start the new release's `edge` command")

    def _point(self, name: str, version: str) -> None:
        temp = self.link(f".{name}.tmp")
        temp.unlink(missing_ok=True)
        temp.symlink_to(Path("releases") / version)
        os.replace(temp, self.link(name))

    def _prune(self) -> None:
        keep = {self.version_of("current"), self.version_of("previous")}
        releases = sorted((p for p in self.releases_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
                          key=lambda p: p.stat().st_mtime, reverse=True)
        for extra in [p for p in releases if p.name not in keep][max(0, KEEP_RELEASES - len(keep)):]:
            shutil.rmtree(extra, ignore_errors=True)

    # after the restart
    def mark_good(self) -> str | None:
        state = self.state()
        pending = state.get("pending")
        if pending is None:
            return None
        if pending != self.version_of("current"):
            raise UpdateError(f"release {pending} is pending but current is {self.version_of('current')}")
        state["pending"] = None
        self._note(state, "marked_good", pending)
        self._save(state)
        log.info("update_marked_good", version=pending)
        return pending

    def guard(self) -> str | None:
        """Run before every start (edge.service's ExecStartPre, from the previous release):
        a pending release gets one start. Started again while still pending, it crashed or
        hung before its health check passed: `current` goes back to the previous release,
        which is what this very start then runs. Returns the release brought back, if any."""
        state = self.state()
        if state.get("pending") is None:
            return None
        state["pending_starts"] = int(state.get("pending_starts", 0)) + 1
        self._save(state)
        if state["pending_starts"] > 1:
            return self.rollback("started again before its health check passed", restart=False)
        return None

    def rollback(self, reason: str, *, restart: bool = True) -> str | None:
        """Back to the previous release when the current one is pending (never the database).
        Returns the release brought back, or None when there was nothing to roll back."""
        state = self.state()
        pending = state.get("pending")
        previous = self.version_of("previous")
        if pending is None or previous is None:
            log.info("update_rollback_not_needed", pending=pending)
            return None
        self._point("current", previous)
        state["pending"] = None
        state.setdefault("bad", []).append(pending)
        self._note(state, f"rolled_back: {reason}", pending)
        self._save(state)
        log.warning("update_rolled_back", bad=pending, back_to=previous, reason=reason)
        if restart:
            self.restart()
        return previous

    def restart(self) -> None:
        command = shlex.split(self.restart_command)
        try:
            subprocess.run(command, check=True, timeout=60, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as exc:
            raise UpdateError(f"the restart command failed ({self.restart_command}): {exc}") from None


def _run(command: list[str], what: str) -> None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=900,
                                stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        raise UpdateError(f"cannot {what}: {exc}") from None
    if result.returncode != 0:
        last = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
        raise UpdateError(f"cannot {what}: {last[:300]}")


# --- the health gate ----------------------------------------------------------------------------

def wait_until_healthy(base_url: str, deadline_s: float, *, sleep: Callable[[float], None] = time.sleep
                       ) -> tuple[bool, dict[str, Any]]:
    """Poll <base_url>/healthz/parts until every part the controller has is healthy, or the
    deadline passes. Returns (healthy, the last parts seen)."""
    end = time.monotonic() + deadline_s
    parts: dict[str, Any] = {"http": False}
    while True:
        parts = read_parts(base_url)
        if all(value is not False for value in parts.values()):
            return True, parts
        if time.monotonic() >= end:
            return False, parts
        sleep(1.0)


def read_parts(base_url: str) -> dict[str, Any]:
    """{"http": /healthz answers 200 (what the kiosk browser and the watchdog rely on),
    then each part /healthz/parts reports: True, False, or None when not configured}."""
    base = base_url.rstrip("/")
    parts: dict[str, Any] = {"http": _answers_ok(f"{base}/healthz")}
    try:
        with urllib.request.urlopen(f"{base}/healthz/parts", timeout=5) as reply:
            parts.update(json.load(reply).get("parts", {}))
    except urllib.error.HTTPError as exc:
        try:
            parts.update(json.load(exc).get("parts", {}))
        except (ValueError, AttributeError):
            parts["http"] = False
    except (urllib.error.URLError, OSError, ValueError):
        parts["http"] = False
    return parts


def _answers_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def releases_from(settings: Any) -> Releases:
    update = settings.update
    return Releases(update.prefix, restart_command=update.restart_command, python=update.python,
                    shared_site_packages=update.shared_site_packages)
