"""Pickup codes: 8 random digits, kept only as HMAC-SHA256 under the box secret.

A keyed hash (not a plain one) because 10^8 codes are few: anyone holding a stolen
database could hash them all in seconds, but not without the key file.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets

CODE_DIGITS = 8
_CODE_SHAPE = re.compile(rf"^[0-9]{{{CODE_DIGITS}}}$")  # ASCII digits only, not \d


class PickupCodes:
    """Owns the box secret: new pickup codes and their keyed digests."""

    def __init__(self, box_secret: bytes) -> None:
        if len(box_secret) < 16:
            raise ValueError("the box secret must be at least 16 bytes")
        self._secret = box_secret

    @staticmethod
    def new_code() -> str:
        return f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"

    def digest(self, code: str) -> str:
        return hmac.new(self._secret, code.encode(), hashlib.sha256).hexdigest()


def normalise_code(raw: str) -> str | None:
    """The code as typed, without spaces; None when it cannot be a pickup code at all."""
    code = re.sub(r"\s", "", raw or "")
    return code if _CODE_SHAPE.match(code) else None
