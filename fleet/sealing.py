"""Opening `data.secret` (the contract's "Sealed secrets"): X25519 + HKDF-SHA256 +
AES-256-GCM, the message_id as AAD. Only the platform holds the private key; the edge seals
to its public half, so the broker, the outbox and the stored events see only ciphertext."""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HKDF_INFO = b"edge/v1 parcel secret"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16


class SealError(ValueError):
    """The secret cannot be opened: malformed, wrong key, or moved to another message."""


def public_key_b64(private_key: bytes) -> str:
    """The value stations put in mqtt.platform_public_key (standard base64 of 32 raw bytes)."""
    public = X25519PrivateKey.from_private_bytes(private_key).public_key()
    return base64.b64encode(public.public_bytes(serialization.Encoding.Raw,
                                                serialization.PublicFormat.Raw)).decode()


def new_private_key() -> bytes:
    return X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())


def derive_key(shared: bytes, epk: bytes, platform_public: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=epk + platform_public,
                info=HKDF_INFO).derive(shared)


def open_secret(private_key: bytes, message_id: str, secret: str) -> dict[str, Any]:
    """The plaintext JSON object of `secret`, sealed for the message `message_id`."""
    try:
        blob = base64.urlsafe_b64decode(secret.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise SealError("secret is not base64url") from None
    if len(blob) < KEY_BYTES + NONCE_BYTES + TAG_BYTES:
        raise SealError("secret is too short")
    epk, nonce, sealed = blob[:KEY_BYTES], blob[KEY_BYTES:KEY_BYTES + NONCE_BYTES], blob[KEY_BYTES + NONCE_BYTES:]
    platform = X25519PrivateKey.from_private_bytes(private_key)
    platform_public = platform.public_key().public_bytes(serialization.Encoding.Raw,
                                                         serialization.PublicFormat.Raw)
    try:
        shared = platform.exchange(X25519PublicKey.from_public_bytes(epk))
        plaintext = AESGCM(derive_key(shared, epk, platform_public)).decrypt(
            nonce, sealed, message_id.encode("utf-8"))
    except (InvalidTag, ValueError):
        raise SealError("secret does not open with this key for this message") from None
    try:
        opened = json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise SealError("secret plaintext is not JSON") from None
    if not isinstance(opened, dict):
        raise SealError("secret plaintext is not a JSON object")
    return opened
