"""Sealed secrets: a secret meant for the platform alone, encrypted on the box to the
platform's X25519 public key (the MQTT contract's "Sealed secrets", ADR 0110).

The box only ever holds the public key, so neither the outbox table, its WAL, the broker
nor a copied SD card reveals a sealed pickup code. The message id is the AAD: a sealed
secret cannot be moved into another message.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

INFO = b"edge/v1 parcel secret"
KEY_BYTES, NONCE_BYTES, TAG_BYTES = 32, 12, 16


class SealError(ValueError):
    """A key or a sealed secret is malformed, or the secret does not open."""


def parse_public_key(text: str) -> X25519PublicKey:
    """The setting's value: standard base64 of the raw 32-byte X25519 public key."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SealError("the platform public key is not base64") from None
    if len(raw) != KEY_BYTES:
        raise SealError(f"the platform public key must be {KEY_BYTES} bytes, not {len(raw)}")
    return X25519PublicKey.from_public_bytes(raw)


def public_key_text(key: X25519PublicKey) -> str:
    return base64.b64encode(_raw(key)).decode()


def _raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _derive(shared: bytes, epk: bytes, platform: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=epk + platform, info=INFO).derive(shared)


def seal(platform_key: X25519PublicKey, secret: dict[str, Any], message_id: str) -> str:
    """`secret` (a JSON object) sealed for the platform, bound to `message_id`."""
    ephemeral = X25519PrivateKey.generate()
    epk = _raw(ephemeral.public_key())
    key = _derive(ephemeral.exchange(platform_key), epk, _raw(platform_key))
    nonce = os.urandom(NONCE_BYTES)
    plaintext = json.dumps(secret, separators=(",", ":")).encode()
    sealed = AESGCM(key).encrypt(nonce, plaintext, message_id.encode())
    return base64.urlsafe_b64encode(epk + nonce + sealed).decode()


def unseal(platform_private: X25519PrivateKey, sealed: str, message_id: str) -> dict[str, Any]:
    """What the platform does (the simulated cloud and tests): open a sealed secret."""
    try:
        blob = base64.urlsafe_b64decode(sealed.encode())
    except (binascii.Error, ValueError):
        raise SealError("a sealed secret is base64url") from None
    if len(blob) < KEY_BYTES + NONCE_BYTES + TAG_BYTES:
        raise SealError("a sealed secret is too short")
    epk, nonce, body = blob[:KEY_BYTES], blob[KEY_BYTES:KEY_BYTES + NONCE_BYTES], blob[KEY_BYTES + NONCE_BYTES:]
    platform = _raw(platform_private.public_key())
    key = _derive(platform_private.exchange(X25519PublicKey.from_public_bytes(epk)), epk, platform)
    try:
        return json.loads(AESGCM(key).decrypt(nonce, body, message_id.encode()))
    except InvalidTag:
        raise SealError("the sealed secret does not open with this key and message id") from None
