from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.clock import FakeClock
from edge.community import IdentityError, ResidentDirectory
from edge.identity.tokens import ResidentTokenIssuer
from edge.storage import Database

from tests.support.community import SITE_ID


def test_a_synced_resident_is_found_by_phone_in_any_usual_spelling(residents: ResidentDirectory) -> None:
    for typed in ("13800138000", "138 0013 8000", "+86 138-0013-8000"):
        resident = residents.identify_by_phone(typed)
        assert (resident.resident_id, resident.name_masked, resident.phone_masked,
                resident.identified_by) == ("res-1", "张*华", "138****8000", "phone")


def test_phone_hash_is_bound_to_the_site(db: Database, clock: FakeClock, catalogue) -> None:
    other_site = ResidentDirectory(db, clock, "another-site", None)
    with pytest.raises(IdentityError) as refused:
        other_site.identify_by_phone("13800138000")
    assert refused.value.code == "unknown_resident"


@pytest.mark.parametrize(("typed", "code"), [("13900000000", "unknown_resident"),
                                             ("12345", "bad_phone"), ("", "bad_phone"),
                                             (13800138000, "bad_phone")])
def test_unknown_or_bad_phones_are_refused(residents: ResidentDirectory, typed: str, code: str) -> None:
    with pytest.raises(IdentityError) as refused:
        residents.identify_by_phone(typed)
    assert refused.value.code == code and refused.value.message


def test_a_genuine_token_identifies_a_synced_resident(residents, issuer: ResidentTokenIssuer,
                                                      clock: FakeClock) -> None:
    token = issuer.issue("res-1", "张*华", clock.now() + timedelta(minutes=5))
    resident = residents.identify_by_token(token)
    assert (resident.resident_id, resident.phone_masked, resident.identified_by) == (
        "res-1", "138****8000", "qr")


def test_a_genuine_token_for_a_resident_not_synced_yet_is_accepted(residents, issuer, clock) -> None:
    token = issuer.issue("res-new", "王*", clock.now() + timedelta(minutes=5))
    resident = residents.identify_by_token(token)
    assert (resident.resident_id, resident.name_masked, resident.phone_masked) == ("res-new", "王*", "")


def test_forged_expired_and_malformed_tokens_are_refused(residents, issuer, clock: FakeClock) -> None:
    forger = ResidentTokenIssuer(Ed25519PrivateKey.generate())
    forged = forger.issue("res-1", "张*华", clock.now() + timedelta(minutes=5))
    soon_expired = issuer.issue("res-1", "张*华", clock.now() + timedelta(minutes=1))
    courier = issuer.issue("c-9", "顺丰", clock.now() + timedelta(minutes=5), role="courier")
    head, body, _sig = issuer.issue("res-1", "x", clock.now() + timedelta(minutes=5)).split(".")
    tampered = ".".join((head, body, forged.split(".")[2]))
    clock.advance(minutes=2)
    for token, code in ((forged, "forged"), (tampered, "forged"), (soon_expired, "expired"),
                        (courier, "malformed"), ("hello", "malformed"), ("a.b.c", "malformed"),
                        (None, "malformed"), ("x" * 5000, "malformed")):
        with pytest.raises(IdentityError) as refused:
            residents.identify_by_token(token)
        assert refused.value.code == code, token


def test_without_a_platform_key_every_token_is_refused(db, clock, catalogue, issuer) -> None:
    directory = ResidentDirectory(db, clock, SITE_ID, None)
    with pytest.raises(IdentityError) as refused:
        directory.identify_by_token(issuer.issue("res-1", "张*华", clock.now() + timedelta(minutes=5)))
    assert refused.value.code == "forged"
