"""Personal data helpers: phone numbers are validated here and shown only masked."""
from __future__ import annotations

import re

# [0-9], not \d: \d also takes Arabic-Indic and full-width digits, which are no phone number.
_MAINLAND_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")


class InvalidPhone(ValueError):
    pass


def normalise_phone(raw: str) -> str:
    """A mainland China mobile number as 11 digits; spaces, dashes and +86 are accepted."""
    digits = re.sub(r"[\s\-()]", "", raw or "")
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if not _MAINLAND_MOBILE.match(digits):
        raise InvalidPhone("a mobile number has 11 digits and starts with 13-19")
    return digits


def mask_phone(phone: str) -> str:
    """138****5678: enough for a person to recognise their own number, no more."""
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 7 else "****"
