"""The platform's side of sealed secrets, for tests: a fixed X25519 key pair whose public
half every test's settings carry (tests/conftest.py), and `revealed()`, which opens a
parcel.deposited event's sealed code and token the way the platform would."""
from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edge.identity.sealing import public_key_text, unseal

PLATFORM_PRIVATE_KEY = X25519PrivateKey.from_private_bytes(bytes(range(32)))
PLATFORM_PUBLIC_KEY = public_key_text(PLATFORM_PRIVATE_KEY.public_key())


def opened_secret(event: Any) -> dict[str, Any]:
    """{"pickup_code", "pickup_token"} of a parcel.deposited outbox row (or envelope dict)."""
    message_id = event["message_id"] if isinstance(event, dict) else event.message_id
    data = event["data"] if isinstance(event, dict) else event.data
    return unseal(PLATFORM_PRIVATE_KEY, data["secret"], message_id)


def revealed(event: Any) -> dict[str, Any]:
    """The event's data with the sealed secret opened into pickup_code and pickup_token."""
    data = event["data"] if isinstance(event, dict) else event.data
    return {**data, **opened_secret(event)}


def texted_code(event: Any) -> str:
    """The one-time code of an identity.otp_requested outbox row, as the platform would text it."""
    return opened_secret(event)["otp"]
