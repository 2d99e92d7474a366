"""Secret key files: created once with owner-only permissions, kept outside the database.

A stolen database alone must not reveal iris templates or let anyone mint pickup tokens, so
the keys live in their own files (0600) under the data directory, never in a table.
"""
from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from edge.logs import get_logger

log = get_logger(__name__)


class KeyFileError(Exception):
    """A key file exists but cannot be used (wrong size, unreadable)."""


def load_or_create_key(path: Path, size: int = 32) -> bytes:
    """The key in `path`, creating it from the OS random source when missing.

    Creation is exclusive (O_EXCL), so two processes starting at once cannot each write a
    different key; the loser reads the winner's key.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path, size)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_bytes(size))
        handle.flush()
        os.fsync(handle.fileno())
    log.info("key file created", path=str(path))
    return _read_key(path, size)


def _read_key(path: Path, size: int) -> bytes:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        # Tighten rather than refuse: refusing would lock every resident out of the box.
        os.chmod(path, 0o600)
        log.warning("key file was readable by others; set to 0600", path=str(path))
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
    if len(key) != size:
        raise KeyFileError(f"key file {path} holds {len(key)} bytes, expected {size}")
    return key
