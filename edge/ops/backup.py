"""Encrypted backups of a station: the SQLite database and the key files, in one file.

`take_backup` copies the live database with SQLite's online backup API (consistent while
the controller keeps writing), packs it with `<data_dir>/keys/` and a manifest of SHA-256
sums into a tar, and seals the tar with AES-256-GCM. The key comes from a passphrase
(scrypt) or from an X25519 recipient public key (an ephemeral key exchange, HKDF), so a
backup can be taken on the box without any secret able to open it (ADR 0150).

File layout: MAGIC, a 4-byte big-endian header length, the header (JSON), then the GCM
nonce and ciphertext. The header is the GCM associated data: changing any byte of it, or
of the ciphertext, makes the restore fail with "damaged or altered".
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAGIC = b"EDGEBAK1"
DATABASE_NAME = "edge.sqlite3"
KEYS_DIR = "keys"
MANIFEST_NAME = "manifest.json"
# scrypt cost: about 0.1-0.3 s and 16 MiB on a Pi 4; an attacker pays the same per guess.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_HKDF_INFO = b"edge-backup v1"


class BackupError(Exception):
    """A backup or restore could not be done; the message says why in one line."""


@dataclass(frozen=True)
class Sealing:
    """How a backup is locked: a passphrase, or a recipient's X25519 public key (raw or PEM).
    Opening needs the passphrase, or the matching private key."""

    passphrase: bytes | None = None
    recipient: X25519PublicKey | None = None

    def __post_init__(self) -> None:
        if (self.passphrase is None) == (self.recipient is None):
            raise BackupError("a backup is sealed with a passphrase or a recipient key, exactly one")


@dataclass(frozen=True)
class Opening:
    """What opens a backup: the passphrase or the recipient's private key."""

    passphrase: bytes | None = None
    identity: X25519PrivateKey | None = None


# --- keys from files -------------------------------------------------------------------

def read_passphrase_file(path: Path) -> bytes:
    try:
        text = Path(path).read_bytes().strip()
    except OSError as exc:
        raise BackupError(f"cannot read passphrase file {path}: {exc.strerror}") from None
    if len(text) < 8:
        raise BackupError(f"passphrase in {path} is shorter than 8 characters")
    return text


def load_public_key(path: Path) -> X25519PublicKey:
    data = _read(path, "recipient key")
    try:
        if data.startswith(b"-----"):
            key = serialization.load_pem_public_key(data)
        else:
            key = X25519PublicKey.from_public_bytes(base64.b64decode(data.strip(), validate=True))
    except ValueError as exc:
        raise BackupError(f"{path} is not an X25519 public key: {exc}") from None
    if not isinstance(key, X25519PublicKey):
        raise BackupError(f"{path} is not an X25519 public key")
    return key


def load_private_key(path: Path) -> X25519PrivateKey:
    data = _read(path, "identity key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise BackupError(f"{path} is not an unencrypted PEM X25519 private key: {exc}") from None
    if not isinstance(key, X25519PrivateKey):
        raise BackupError(f"{path} is not an X25519 private key")
    return key


def generate_identity(private_path: Path, public_path: Path) -> None:
    """A recipient key pair: the private PEM stays off the box (the office), the public PEM
    goes into backup.recipient_key on every station."""
    key = X25519PrivateKey.generate()
    _write_private(private_path, key.private_bytes(serialization.Encoding.PEM,
                                                   serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
    public_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise BackupError(f"cannot read {what} {path}: {exc.strerror}") from None


# --- taking a backup -------------------------------------------------------------------

def take_backup(data_dir: Path, target: Path, sealing: Sealing, *, now: datetime | None = None) -> dict:
    """Write an encrypted backup of `data_dir` to `target` (0600, atomically). Returns the
    manifest. Safe while the controller runs: the copy is one consistent snapshot."""
    database = data_dir / DATABASE_NAME
    if not database.is_file():
        raise BackupError(f"no database at {database}: nothing to back up")
    with tempfile.TemporaryDirectory(prefix="edge-backup-") as scratch:
        snapshot = Path(scratch) / DATABASE_NAME
        _online_copy(database, snapshot)
        files = {DATABASE_NAME: snapshot.read_bytes()}
    keys_dir = data_dir / KEYS_DIR
    if keys_dir.is_dir():
        for key_file in sorted(p for p in keys_dir.iterdir() if p.is_file()):
            files[f"{KEYS_DIR}/{key_file.name}"] = key_file.read_bytes()
    manifest = {
        "format": 1,
        "created": (now or datetime.now(timezone.utc)).isoformat(),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    plaintext = _pack(files, manifest)
    _write_private(target, seal(plaintext, sealing))
    return manifest


def _online_copy(source: Path, target: Path) -> None:
    """SQLite's backup API: pages copied under a read transaction, so a writer committing
    meanwhile is either wholly in the copy or wholly not. Then an integrity check."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        (verdict,) = dst.execute("PRAGMA integrity_check").fetchone()
        if verdict != "ok":
            raise BackupError(f"the database copy failed its integrity check: {verdict}")
    finally:
        dst.close()
        src.close()


def _pack(files: dict[str, bytes], manifest: dict) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in [(MANIFEST_NAME, json.dumps(manifest, indent=1).encode()), *files.items()]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def seal(plaintext: bytes, sealing: Sealing) -> bytes:
    if sealing.passphrase is not None:
        salt = os.urandom(16)
        key, check = _passphrase_keys(sealing.passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        header = {"v": 1, "kdf": "scrypt", "salt": _b64(salt), "n": SCRYPT_N, "r": SCRYPT_R,
                  "p": SCRYPT_P, "check": _b64(check)}
    else:
        ephemeral = X25519PrivateKey.generate()
        ephemeral_public = ephemeral.public_key().public_bytes_raw()
        recipient = sealing.recipient.public_bytes_raw()  # type: ignore[union-attr]
        key = _recipient_key(ephemeral.exchange(sealing.recipient), ephemeral_public, recipient)  # type: ignore[arg-type]
        header = {"v": 1, "kdf": "x25519", "ephemeral": _b64(ephemeral_public),
                  "recipient": _b64(recipient)}
    header_bytes = json.dumps(header, sort_keys=True).encode()
    nonce = os.urandom(12)
    body = AESGCM(key).encrypt(nonce, plaintext, header_bytes)
    return MAGIC + len(header_bytes).to_bytes(4, "big") + header_bytes + nonce + body


def _passphrase_keys(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> tuple[bytes, bytes]:
    """(AES key, a check value): the check tells a wrong passphrase from a damaged file."""
    material = Scrypt(salt=salt, length=64, n=n, r=r, p=p).derive(passphrase)
    return material[:32], hashlib.sha256(material[32:]).digest()


def _recipient_key(shared: bytes, ephemeral_public: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral_public + recipient,
                info=_HKDF_INFO).derive(shared)


# --- opening and restoring -------------------------------------------------------------

def open_backup(path: Path, opening: Opening) -> tuple[dict, dict[str, bytes]]:
    """(manifest, files) of a backup, checked; BackupError with one line otherwise."""
    plaintext = unseal(_read(path, "backup"), opening)
    try:
        with tarfile.open(fileobj=io.BytesIO(plaintext), mode="r") as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
        manifest = json.loads(files.pop(MANIFEST_NAME))
    except (tarfile.TarError, KeyError, ValueError) as exc:
        raise BackupError(f"the backup's contents are not readable: {exc}") from None
    if set(manifest["files"]) != set(files):
        raise BackupError("the backup's contents do not match its manifest")
    for name, data in files.items():
        if hashlib.sha256(data).hexdigest() != manifest["files"][name]:
            raise BackupError(f"the backup's {name} does not match its checksum")
        if not _safe_name(name):
            raise BackupError(f"the backup holds an unexpected file {name!r}")
    if DATABASE_NAME not in files:
        raise BackupError("the backup holds no database")
    return manifest, files


def unseal(blob: bytes, opening: Opening) -> bytes:
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 4:
        raise BackupError("not an edge backup file")
    offset = len(MAGIC) + 4
    header_length = int.from_bytes(blob[len(MAGIC):offset], "big")
    header_bytes = blob[offset:offset + header_length]
    try:
        header = json.loads(header_bytes)
    except ValueError:
        raise BackupError("the backup file is damaged or altered (header)") from None
    body = blob[offset + header_length:]
    key = _opening_key(header, opening)
    try:
        return AESGCM(key).decrypt(body[:12], body[12:], header_bytes)
    except (InvalidTag, ValueError):
        raise BackupError("the backup file is damaged or altered (authentication failed)") from None


def _opening_key(header: dict, opening: Opening) -> bytes:
    try:
        if header.get("kdf") == "scrypt":
            if opening.passphrase is None:
                raise BackupError("this backup is sealed with a passphrase: give --passphrase-file")
            key, check = _passphrase_keys(opening.passphrase, _unb64(header["salt"]),
                                          int(header["n"]), int(header["r"]), int(header["p"]))
            if not hmac.compare_digest(check, _unb64(header["check"])):
                raise BackupError("wrong passphrase for this backup")
            return key
        if header.get("kdf") == "x25519":
            if opening.identity is None:
                raise BackupError("this backup is sealed to a recipient key: give --identity")
            recipient = opening.identity.public_key().public_bytes_raw()
            if not hmac.compare_digest(recipient, _unb64(header["recipient"])):
                raise BackupError("this backup was sealed to another recipient key")
            ephemeral = _unb64(header["ephemeral"])
            shared = opening.identity.exchange(X25519PublicKey.from_public_bytes(ephemeral))
            return _recipient_key(shared, ephemeral, recipient)
    except (KeyError, TypeError, ValueError):
        raise BackupError("the backup file is damaged or altered (header)") from None
    raise BackupError(f"unknown backup sealing {header.get('kdf')!r}")


def restore_backup(path: Path, data_dir: Path, opening: Opening, *, now: datetime | None = None) -> dict:
    """Put a backup's database and keys into `data_dir` (a stopped station). Whatever was
    there is moved aside into `pre-restore-<time>/`, never deleted. Returns the manifest.

    The bus lock is held throughout, so a controller cannot start meanwhile; one that is
    running holds it, and the restore is refused."""
    from edge.locker.buslock import BusBusy, BusLock, bus_lock_path

    manifest, files = open_backup(path, opening)  # everything checked before anything moves
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        lock = BusLock(bus_lock_path(data_dir)).acquire()
    except BusBusy:
        raise BackupError("the controller is running on this data folder: stop it first "
                          "(systemctl stop edge)") from None
    try:
        _move_aside(data_dir, now or datetime.now(timezone.utc))
        for name, data in files.items():
            target = data_dir / name
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write_private(target, data)
    finally:
        lock.release()
    return manifest


def _move_aside(data_dir: Path, now: datetime) -> None:
    present = [data_dir / n for n in (DATABASE_NAME, f"{DATABASE_NAME}-wal", f"{DATABASE_NAME}-shm",
                                      KEYS_DIR)]
    present = [p for p in present if p.exists()]
    if not present:
        return
    aside = data_dir / f"pre-restore-{now.strftime('%Y%m%dT%H%M%SZ')}"
    aside.mkdir(mode=0o700)
    for item in present:
        shutil.move(str(item), aside / item.name)


def _safe_name(name: str) -> bool:
    parts = Path(name).parts
    return name == DATABASE_NAME or (len(parts) == 2 and parts[0] == KEYS_DIR
                                     and parts[1] not in ("", ".", ".."))


def _write_private(target: Path, data: bytes) -> None:
    """Write `data` to `target` with mode 0600, atomically (temp file, fsync, rename)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)
