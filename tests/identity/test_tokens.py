"""Pickup tokens (HMAC, per-box secret) and personal tokens (Ed25519, platform key)."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.identity.tokens import (
    PickupTokenCodec,
    ResidentTokenIssuer,
    ResidentTokenVerifier,
    TokenError,
    token_kind,
)

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=timezone.utc)
LATER = NOW + timedelta(hours=72)
SECRET = b"s" * 32


class refused:
    """Expects a TokenError with this code."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, _tb) -> bool:
        assert kind is TokenError, f"expected TokenError({self.code}), got {kind}"
        assert error.code == self.code
        return True


# ----------------------------------------------------------------------------- pickup

def test_pickup_token_round_trip_binds_parcel_and_compartment() -> None:
    codec = PickupTokenCodec(SECRET)
    token = codec.issue("PCL-2026-000123", 7, LATER)
    claim = codec.verify(token, NOW)
    assert (claim.parcel_id, claim.compartment, claim.expires_at) == ("PCL-2026-000123", "7", LATER)
    assert token.startswith("P1.") and len(token) < 100  # a small QR
    assert token_kind(token) == "pickup"


def test_each_issue_has_its_own_token_id() -> None:
    codec = PickupTokenCodec(SECRET)
    first, second = (codec.verify(codec.issue("P1", "3", LATER), NOW) for _ in range(2))
    assert first.token_id != second.token_id and len(first.token_id) == 16


def test_token_from_another_box_is_forged() -> None:
    token = PickupTokenCodec(b"other-box-secret-xxxxxxxxxxxxxxx").issue("P1", "3", LATER)
    with refused("forged"):
        PickupTokenCodec(SECRET).verify(token, NOW)


def test_altered_payload_is_forged() -> None:
    codec = PickupTokenCodec(SECRET)
    token = codec.issue("PCL-1", "3", LATER)
    prefix, payload, mac = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[13] ^= 0x01  # the compartment: try to open the neighbouring door
    altered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with refused("forged"):
        codec.verify(f"{prefix}.{altered}.{mac}", NOW)


def test_other_parcels_mac_does_not_carry_over() -> None:
    codec = PickupTokenCodec(SECRET)
    mine, theirs = codec.issue("PCL-1", "3", LATER), codec.issue("PCL-2", "4", LATER)
    spliced = ".".join(theirs.split(".")[:2] + mine.split(".")[2:])
    with refused("forged"):
        codec.verify(spliced, NOW)


def test_expired_token_is_refused_at_and_after_expiry() -> None:
    codec = PickupTokenCodec(SECRET)
    token = codec.issue("PCL-1", "3", LATER)
    assert codec.verify(token, LATER - timedelta(seconds=1)).parcel_id == "PCL-1"
    with refused("expired"):
        codec.verify(token, LATER)


def test_replay_is_refused_through_the_callers_record() -> None:
    codec = PickupTokenCodec(SECRET)
    token = codec.issue("PCL-1", "3", LATER)
    used: set[str] = set()
    claim = codec.verify(token, NOW, already_used=used.__contains__)
    used.add(claim.token_id)
    with refused("used"):
        codec.verify(token, NOW, already_used=used.__contains__)


@pytest.mark.parametrize("text", [
    "", "hello", "P1.", "P1..", "P1.abc", "P1.abc.def.ghi", "P1.@@@.###", "P1.QUJD.QUJD",
    "P1." + "A" * 2000 + ".AAAA", "P1.é.é", "\x00\x01",
])
def test_malformed_input_gets_a_clear_refusal(text: str) -> None:
    with pytest.raises(TokenError) as refusal:
        PickupTokenCodec(SECRET).verify(text, NOW)
    assert refusal.value.code in {"malformed", "forged"}


def test_short_secret_and_naive_times_are_programming_errors() -> None:
    with pytest.raises(ValueError):
        PickupTokenCodec(b"short")
    with pytest.raises(ValueError):
        PickupTokenCodec(SECRET).issue("P", "1", datetime(2027, 1, 1))


# ----------------------------------------------------------------------------- personal

@pytest.fixture
def platform_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def issuer(platform_key: Ed25519PrivateKey) -> ResidentTokenIssuer:
    return ResidentTokenIssuer(platform_key)


@pytest.fixture
def verifier(issuer: ResidentTokenIssuer) -> ResidentTokenVerifier:
    return ResidentTokenVerifier(issuer.public_key_pem().decode())


def test_resident_token_verifies_with_the_platform_key(issuer, verifier) -> None:
    token = issuer.issue("res-00042", "张*", LATER, token_id="t-1")
    claim = verifier.verify(token, NOW)
    assert (claim.subject_id, claim.masked_name, claim.role, claim.expires_at, claim.token_id) == (
        "res-00042", "张*", "resident", LATER, "t-1")
    assert token_kind(token) == "personal"


def test_courier_badge_uses_the_same_scheme_with_its_role(issuer, verifier) -> None:
    badge = issuer.issue("courier-9", "李*", LATER, role="courier")
    assert verifier.verify(badge, NOW, role="courier").role == "courier"
    with refused("wrong_role"):
        verifier.verify(badge, NOW, role="resident")


def test_token_signed_by_another_key_is_forged(verifier) -> None:
    stranger = ResidentTokenIssuer(Ed25519PrivateKey.generate())
    with refused("forged"):
        verifier.verify(stranger.issue("res-1", "王*", LATER), NOW)


def test_altered_claims_are_forged(issuer, verifier) -> None:
    header, payload, signature = issuer.issue("res-1", "王*", LATER).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "courier"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with refused("forged"):
        verifier.verify(f"{header}.{forged}.{signature}", NOW)


def test_algorithm_none_is_refused(issuer, verifier) -> None:
    _, payload, signature = issuer.issue("res-1", "王*", LATER).split(".")
    none_header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    with refused("forged"):
        verifier.verify(f"{none_header}.{payload}.{signature}", NOW)


def test_expired_personal_token_is_refused(issuer, verifier) -> None:
    with refused("expired"):
        verifier.verify(issuer.issue("res-1", "王*", NOW - timedelta(seconds=1)), NOW)


@pytest.mark.parametrize("text", ["", "a.b", "a.b.c", "eyJ.eyJ.AAAA", "x" * 3000, "P1.a.b"])
def test_malformed_personal_tokens(verifier, text: str) -> None:
    with refused("malformed"):
        verifier.verify(text, NOW)


def test_well_signed_token_with_missing_claims_is_malformed(platform_key, verifier) -> None:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signed = b64(b'{"alg":"EdDSA"}') + "." + b64(b'{"sub":"res-1"}')
    token = f"{signed}.{b64(platform_key.sign(signed.encode()))}"
    with refused("malformed"):
        verifier.verify(token, NOW)


def test_verifier_refuses_a_key_that_is_not_ed25519() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ValueError, match="Ed25519"):
        ResidentTokenVerifier(pem)
    with pytest.raises(ValueError, match="PEM"):
        ResidentTokenVerifier("not a key")


def test_token_kind_routes_unknown_text_nowhere() -> None:
    assert token_kind("https://example.org") is None
