"""The data folder holds the database, its WAL, the key files and the local API credential:
only the controller's user may read them, whoever starts `edge run` and whatever their umask
(outside systemd a login shell's 022 would leave them world-readable)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE, FILE_MODE = 0o700, 0o600


def lock_down_data_dir(data_dir: Path) -> None:
    """umask 077 for everything this process creates from now on, the folder 0700 and every
    file already in it 0600 (folders below it 0700)."""
    os.umask(0o077)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, DIR_MODE)
    for root, dirs, files in os.walk(data_dir):
        for name in dirs:
            os.chmod(Path(root) / name, DIR_MODE)
        for name in files:
            path = Path(root) / name
            if stat.S_ISREG(path.lstat().st_mode):  # not sockets or the symlinks of a layout
                os.chmod(path, FILE_MODE)


def loose_modes(data_dir: Path) -> list[str]:
    """Paths in the data folder that others than the owner may read or write (for selftest)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return []
    found = [] if stat.S_IMODE(data_dir.stat().st_mode) & 0o077 == 0 else [str(data_dir)]
    for root, dirs, files in os.walk(data_dir):
        for name in [*dirs, *files]:
            path = Path(root) / name
            mode = path.lstat().st_mode
            if (stat.S_ISREG(mode) or stat.S_ISDIR(mode)) and stat.S_IMODE(mode) & 0o077:
                found.append(f"{path} {stat.S_IMODE(mode):04o}")
    return found
