"""What the platform tests share: waiting (longer by default: a whole ingest pipeline moves
between the test and PostgreSQL) and counting rows in a fresh snapshot."""
from __future__ import annotations

import base64
import json
import os
from datetime import datetime, timezone
from functools import partial
from typing import Any

import psycopg
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tests.support.wait import wait_until as _wait_until

wait_until = partial(_wait_until, timeout=30.0)
NOW = datetime(2026, 11, 30, 1, 0, tzinfo=timezone.utc)  # the platform tests' fake now


def count(pg: psycopg.Connection, sql: str, *params: Any) -> int:
    pg.rollback()  # a fresh snapshot each time
    return pg.execute(sql, params).fetchone()[0]


def seal(platform_public: bytes, message_id: str, plaintext: dict) -> str:
    """The edge's side, written here from the contract's "Sealed secrets" section."""
    ephemeral = X25519PrivateKey.generate()
    epk = ephemeral.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(platform_public))
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=epk + platform_public,
               info=b"edge/v1 parcel secret").derive(shared)
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, json.dumps(plaintext).encode(), message_id.encode("utf-8"))
    return base64.urlsafe_b64encode(epk + nonce + sealed).decode()
