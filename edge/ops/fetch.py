"""`update.available` from the cloud: the edge fetches the named bundle itself (stations sit
behind NAT; nothing can be pushed to them), over HTTPS, from an allowed host only, checks
the SHA-256 the command names, and then installs it as `edge update BUNDLE` does: the
bundle's own signature is checked too, so a command alone cannot make the box run anything
(ADR 0151)."""
from __future__ import annotations

import hashlib
import os
import re
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from edge.logs import get_logger
from edge.ops.update import UpdateError

log = get_logger("edge.update")
MAX_BUNDLE_BYTES = 1 << 30
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Refused(Exception):
    """The command is refused (a contract error code and plain words, as CommandError)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def check_source(url: str, sha256: str, allowed_hosts: list[str]) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https":
        raise Refused("bad_url", "bundles are fetched over https only")
    if not parts.hostname or parts.hostname not in allowed_hosts:
        raise Refused("host_not_allowed", f"{parts.hostname!r} is not in update.allowed_hosts")
    if not _SHA256.match(sha256):
        raise Refused("bad_checksum", "sha256 must be 64 lower-case hex digits")


def fetch_bundle(url: str, sha256: str, allowed_hosts: list[str], folder: Path,
                 ca_file: Path | None = None) -> Path:
    """Download to `folder`/<sha256>.bundle, checking size and checksum; UpdateError otherwise."""
    try:
        check_source(url, sha256, allowed_hosts)
    except Refused as exc:
        raise UpdateError(exc.message) from None
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = folder / f"{sha256}.bundle"
    partial = folder / f"{sha256}.partial"
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    digest, size = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=60, context=context) as reply, open(partial, "wb") as out:
            while block := reply.read(1 << 20):
                size += len(block)
                if size > MAX_BUNDLE_BYTES:
                    raise UpdateError(f"the bundle at {url} is larger than {MAX_BUNDLE_BYTES} bytes")
                digest.update(block)
                out.write(block)
    except (urllib.error.URLError, OSError, ssl.SSLError) as exc:
        partial.unlink(missing_ok=True)
        raise UpdateError(f"cannot fetch {url}: {exc}") from None
    except UpdateError:
        partial.unlink(missing_ok=True)
        raise
    if digest.hexdigest() != sha256:
        partial.unlink(missing_ok=True)
        raise UpdateError(f"the bundle fetched from {url} does not match the sha256 the command named")
    os.replace(partial, target)
    return target


class UpdateAvailable:
    """The `update.available` command handler: checks the command, then, in a thread of its
    own (a download takes minutes; the reply says only "accepted"), fetches the bundle,
    checks its sha256 and signature, and hands it over in <download dir>/ready/. The
    controller runs sandboxed and cannot write the releases; edge-update.path sees the file
    and edge-update.service (root) runs `edge update install-ready` (ADR 0151)."""

    def __init__(self, settings: Any) -> None:
        self._settings = settings
        self._busy = threading.Lock()

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        update = self._settings.update
        if update.public_key is None:
            raise Refused("updates_not_configured", "this edge has no update.public_key")
        check_source(data["url"], data["sha256"], update.allowed_hosts)
        if not self._busy.acquire(blocking=False):
            raise Refused("busy", "another update is being fetched")
        thread = threading.Thread(target=self._fetch_and_hand_over, args=(data,), name="update-fetch",
                                  daemon=True)
        thread.start()
        return {"accepted": True, "version": data["version"]}

    def _fetch_and_hand_over(self, data: dict[str, Any]) -> None:
        from edge.ops.update import load_public_key, verify_bundle

        update = self._settings.update
        folder = download_dir(self._settings)
        try:
            bundle = fetch_bundle(data["url"], data["sha256"], update.allowed_hosts, folder, update.ca_file)
            try:
                verified = verify_bundle(bundle, load_public_key(update.public_key))
                ready = folder / "ready"
                ready.mkdir(mode=0o700, exist_ok=True)
                os.replace(bundle, ready / f"{verified.version}.bundle")
            finally:
                bundle.unlink(missing_ok=True)
            log.info("update_ready", version=verified.version)
        except UpdateError as exc:
            log.error("update_failed", version=data.get("version"), error=str(exc))
        finally:
            self._busy.release()


def download_dir(settings: Any) -> Path:
    return settings.update.download_dir or settings.data_dir / "updates"


def ready_bundles(settings: Any) -> list[Path]:
    """Bundles fetched and verified by the controller, oldest first."""
    ready = download_dir(settings) / "ready"
    return sorted(ready.glob("*.bundle"), key=lambda p: p.stat().st_mtime) if ready.is_dir() else []
