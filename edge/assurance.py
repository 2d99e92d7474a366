"""Identity assurance: how sure the station is that the person at the screen is the resident
they named, and what each act needs (ADR 0115). The one place screens and services ask.

- LOW: a typed phone number. Anyone who knows a neighbour's number can type it, so it is
  enough only to ask for help or sign up (acts that serve the resident and show nothing).
- HIGH: the platform-signed personal QR code (checked offline), or a phone number followed
  by the one-time code the platform texted to that phone.

Knows nothing of Flask, identity or community: they import it, not the other way round.
"""
from __future__ import annotations

import enum


class Assurance(str, enum.Enum):
    LOW = "low"
    HIGH = "high"


# What each act needs. An act missing here needs HIGH: a new screen is safe until decided.
NEEDS: dict[str, Assurance] = {
    "request_help": Assurance.LOW,
    "sign_up": Assurance.LOW,
    "sign_in": Assurance.LOW,
    "request_booking": Assurance.LOW,
    "give_feedback": Assurance.LOW,
    "see_own_data": Assurance.HIGH,  # bookings, sign-ups: anything beyond a masked name
    "cancel_booking": Assurance.HIGH,
    "iris_consent": Assurance.HIGH,
    "iris_enrol": Assurance.HIGH,
    "iris_revoke": Assurance.HIGH,
}

# How a resident was identified -> the assurance it gives.
BY_METHOD: dict[str, Assurance] = {"qr": Assurance.HIGH, "otp": Assurance.HIGH, "phone": Assurance.LOW}


class AssuranceTooLow(Exception):
    """The act needs more than the visit's assurance; `.code` for the UI and the API."""

    code = "assurance_too_low"

    def __init__(self, act: str, have: Assurance) -> None:
        super().__init__(f"{act} needs {needed(act).value} assurance; this visit has {have.value}")
        self.act = act
        self.have = have
        self.message = str(self)


def level(value: str | Assurance | None) -> Assurance:
    """A stored level ("low"/"high"); anything unknown or missing is LOW."""
    try:
        return Assurance(value)
    except ValueError:
        return Assurance.LOW


def needed(act: str) -> Assurance:
    return NEEDS.get(act, Assurance.HIGH)


def allows(have: str | Assurance | None, act: str) -> bool:
    return needed(act) is Assurance.LOW or level(have) is Assurance.HIGH


def require(have: str | Assurance | None, act: str) -> None:
    """Raise AssuranceTooLow unless `have` is enough for `act`."""
    if not allows(have, act):
        raise AssuranceTooLow(act, level(have))
