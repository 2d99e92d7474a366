"""Signed QR tokens: pickup tokens minted by this box, personal tokens minted by the platform.

Pickup token (ADR 0042): ``P1.<payload>.<mac>``, base64url without padding.
  payload = nonce (8 bytes) | expires_at (uint32, Unix seconds) | len(compartment) (1 byte) |
            compartment (UTF-8) | parcel id (UTF-8, rest)
  mac     = HMAC-SHA256(box secret, "P1." + payload text), first 16 bytes
It opens exactly one parcel's door, and only until it expires; whether it was already used is
the caller's record, keyed by ``PickupClaim.token_id``.

Personal token (resident or courier): a JWS compact token (RFC 7515) signed with Ed25519
(``alg: EdDSA``, RFC 8037) by the community platform, so any JOSE library can mint it. The
edge accepts only that algorithm and only the platform key it was configured with.
Claims: ``sub`` (resident or courier id), ``name`` (masked), ``role``, ``exp``, optional ``jti``.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PICKUP_PREFIX = "P1."
_MAC_BYTES = 16
_NONCE_BYTES = 8
_HEAD = struct.Struct(">8sIB")  # nonce, expires_at, compartment length
MAX_TOKEN_CHARS = 1024  # longer scanner input is refused before any parsing

Role = Literal["resident", "courier"]
ROLES: frozenset[str] = frozenset({"resident", "courier"})
TokenKind = Literal["pickup", "personal"]


class TokenError(Exception):
    """A token was refused. `code` is stable for callers and UI translations:
    malformed, forged, expired, used, wrong_role."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class PickupClaim:
    token_id: str  # hex nonce: what the caller records as used
    parcel_id: str
    compartment: str
    expires_at: datetime


@dataclass(frozen=True)
class ResidentClaim:
    subject_id: str
    masked_name: str
    role: Role
    expires_at: datetime
    token_id: str | None = None


def token_kind(text: str) -> TokenKind | None:
    """Which verifier a scanned text belongs to, judged by shape only (nothing verified)."""
    if text.startswith(PICKUP_PREFIX):
        return "pickup"
    if text.count(".") == 2 and text.startswith("eyJ"):
        return "personal"
    return None


class PickupTokenCodec:
    """Issues and verifies pickup tokens with this box's secret (see `load_or_create_key`)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("pickup token secret must be at least 16 bytes")
        self._secret = secret

    def issue(self, parcel_id: str, compartment: str | int, expires_at: datetime) -> str:
        compartment_bytes = str(compartment).encode()
        parcel_bytes = parcel_id.encode()
        if not parcel_bytes or not compartment_bytes or len(compartment_bytes) > 255:
            raise ValueError("parcel id and compartment must be non-empty, compartment < 256 bytes")
        head = _HEAD.pack(secrets.token_bytes(_NONCE_BYTES), _epoch(expires_at),
                          len(compartment_bytes))
        body = PICKUP_PREFIX + _b64encode(head + compartment_bytes + parcel_bytes)
        return f"{body}.{_b64encode(self._mac(body))}"

    def verify(
        self,
        token: str,
        now: datetime,
        *,
        already_used: Callable[[str], bool] | None = None,
    ) -> PickupClaim:
        """The claim of a genuine, unexpired token. `already_used(token_id)` is the caller's
        single-use record; when given, a replayed token is refused with code "used"."""
        body, mac = _split_pickup(token)
        if not hmac.compare_digest(self._mac(body), mac):
            raise TokenError("forged", "this code was not issued by this locker")
        claim = _parse_pickup_payload(_b64decode(body[len(PICKUP_PREFIX):]))
        if claim.expires_at <= _aware(now):
            raise TokenError("expired", "this pickup code has expired")
        if already_used is not None and already_used(claim.token_id):
            raise TokenError("used", "this pickup code was already used")
        return claim

    def _mac(self, body: str) -> bytes:
        return hmac.new(self._secret, body.encode(), hashlib.sha256).digest()[:_MAC_BYTES]


def _split_pickup(token: str) -> tuple[str, bytes]:
    token = token.strip()
    if len(token) > MAX_TOKEN_CHARS or not token.startswith(PICKUP_PREFIX):
        raise TokenError("malformed", "not a pickup code")
    body, sep, mac_text = token.rpartition(".")
    if not sep or body.count(".") != 1:
        raise TokenError("malformed", "not a pickup code")
    mac = _b64decode(mac_text)
    if len(mac) != _MAC_BYTES:
        raise TokenError("malformed", "not a pickup code")
    return body, mac


def _parse_pickup_payload(payload: bytes) -> PickupClaim:
    # Only reached for MAC-verified payloads, so a failure here means a bug at issue time
    # or a leaked secret; still refuse cleanly rather than crash.
    if len(payload) < _HEAD.size + 2:
        raise TokenError("malformed", "not a pickup code")
    nonce, expires, comp_len = _HEAD.unpack_from(payload)
    rest = payload[_HEAD.size:]
    try:
        compartment = rest[:comp_len].decode()
        parcel_id = rest[comp_len:].decode()
    except UnicodeDecodeError as exc:
        raise TokenError("malformed", "not a pickup code") from exc
    if not compartment or not parcel_id or len(rest) <= comp_len:
        raise TokenError("malformed", "not a pickup code")
    return PickupClaim(nonce.hex(), parcel_id, compartment,
                       datetime.fromtimestamp(expires, timezone.utc))


class ResidentTokenVerifier:
    """Verifies personal tokens (residents and couriers) against the platform's public key."""

    def __init__(self, public_key_pem: bytes | str) -> None:
        pem = public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem
        try:
            key = serialization.load_pem_public_key(pem)
        except ValueError as exc:
            raise ValueError("resident token public key is not a PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("resident token public key must be an Ed25519 key")
        self._key = key

    def verify(self, token: str, now: datetime, *, role: Role | None = None) -> ResidentClaim:
        """The claim of a genuine, unexpired token; `role` refuses the other role
        ("wrong_role"), e.g. a resident's token at the courier deposit screen."""
        header, payload, signed, signature = _split_jws(token)
        if header.get("alg") != "EdDSA":
            raise TokenError("forged", "this code is not signed by the community platform")
        try:
            self._key.verify(signature, signed)
        except InvalidSignature as exc:
            raise TokenError("forged", "this code is not signed by the community platform") from exc
        claim = _resident_claim(payload)
        if claim.expires_at <= _aware(now):
            raise TokenError("expired", "this personal code has expired; open the app for a new one")
        if role is not None and claim.role != role:
            raise TokenError("wrong_role", f"this code is not a {role} code")
        return claim


class ResidentTokenIssuer:
    """Mints personal tokens as the platform does. For simulators and tests: the real
    issuer is the cloud platform, and its private key never comes to the box."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key

    def public_key_pem(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def issue(
        self,
        subject_id: str,
        masked_name: str,
        expires_at: datetime,
        *,
        role: Role = "resident",
        token_id: str | None = None,
    ) -> str:
        if role not in ROLES:
            raise ValueError(f"role must be one of {sorted(ROLES)}")
        claims: dict[str, object] = {"sub": subject_id, "name": masked_name, "role": role,
                                     "exp": _epoch(expires_at)}
        if token_id is not None:
            claims["jti"] = token_id
        signed = f"{_b64json({'alg': 'EdDSA', 'typ': 'JWT'})}.{_b64json(claims)}"
        return f"{signed}.{_b64encode(self._key.sign(signed.encode()))}"


def _split_jws(token: str) -> tuple[dict[str, object], dict[str, object], bytes, bytes]:
    token = token.strip()
    parts = token.split(".")
    if len(token) > MAX_TOKEN_CHARS or len(parts) != 3:
        raise TokenError("malformed", "not a personal code")
    header, payload = _json_object(parts[0]), _json_object(parts[1])
    signature = _b64decode(parts[2])
    if len(signature) != 64:
        raise TokenError("malformed", "not a personal code")
    return header, payload, f"{parts[0]}.{parts[1]}".encode(), signature


def _resident_claim(payload: dict[str, object]) -> ResidentClaim:
    sub, name, role, exp = (payload.get(k) for k in ("sub", "name", "role", "exp"))
    jti = payload.get("jti")
    if (not isinstance(sub, str) or not sub or not isinstance(name, str)
            or role not in ROLES or not isinstance(exp, int) or isinstance(exp, bool)
            or not (jti is None or isinstance(jti, str))):
        raise TokenError("malformed", "not a personal code")
    try:
        expires_at = datetime.fromtimestamp(exp, timezone.utc)
    except (OverflowError, OSError, ValueError) as exc:
        raise TokenError("malformed", "not a personal code") from exc
    return ResidentClaim(sub, name, role, expires_at, jti)  # type: ignore[arg-type]


def _json_object(text: str) -> dict[str, object]:
    try:
        value = json.loads(_b64decode(text))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TokenError("malformed", "not a personal code") from exc
    if not isinstance(value, dict):
        raise TokenError("malformed", "not a personal code")
    return value


def _b64json(value: dict[str, object]) -> str:
    return _b64encode(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenError("malformed", "not a valid code") from exc


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment


def _epoch(moment: datetime) -> int:
    seconds = int(_aware(moment).timestamp())
    if not 0 < seconds < 2**32:
        raise ValueError("expiry out of range")
    return seconds
