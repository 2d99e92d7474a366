"""Who is at the screen: a resident's personal QR code from the platform app, or the phone
number of a resident the platform synced to this box."""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select

from edge.assurance import BY_METHOD, Assurance
from edge.clock import Clock
from edge.community.errors import IdentityError
from edge.community.models import ResidentRow
from edge.privacy import InvalidPhone, mask_phone, normalise_phone
from edge.storage import Database

IdentifiedBy = Literal["qr", "phone"]
# Checks a resident's personal token at a time: (resident_id, masked name) of a genuine,
# unexpired resident token, else IdentityError (forged, expired, malformed). Handed in by
# the composition root (edge/app.py), so community does not import identity.
ResidentTokenCheck = Callable[[str, datetime], tuple[str, str]]


@dataclass(frozen=True)
class Resident:
    resident_id: str
    name_masked: str
    phone_masked: str
    identified_by: IdentifiedBy = "qr"  # becomes signin.recorded's "method"
    # edge.assurance level: "high" for the platform's QR or a phone plus its SMS code,
    # "low" for a typed phone alone (ADR 0115). Left empty: what `identified_by` gives.
    assurance: str = ""

    def __post_init__(self) -> None:
        if not self.assurance:
            object.__setattr__(self, "assurance", BY_METHOD.get(self.identified_by, Assurance.LOW).value)


def phone_hash(site_id: str, phone: str) -> str:
    """How the platform names a phone number to this site without sending it (contract)."""
    return hashlib.sha256(f"{site_id}:{phone}".encode()).hexdigest()


class ResidentDirectory:
    def __init__(self, db: Database, clock: Clock, site_id: str,
                 check_token: ResidentTokenCheck | None) -> None:
        self._db = db
        self._clock = clock
        self._site_id = site_id
        self._check_token = check_token

    def identify_by_token(self, token: str) -> Resident:
        """The resident a genuine, unexpired platform token names. A resident not synced to
        this box is still accepted: the platform's signature vouches for them (ADR 0051)."""
        if self._check_token is None:
            raise IdentityError("forged", "this station has no platform key to check personal "
                                          "codes; please type your phone number instead")
        if not isinstance(token, str):
            raise IdentityError("malformed", "not a personal code")
        resident_id, masked_name = self._check_token(token, self._clock.now())
        with self._db.read() as s:
            row = s.get(ResidentRow, resident_id)
        return Resident(resident_id, masked_name,
                        row.phone_masked if row is not None else "", "qr", Assurance.HIGH.value)

    def phone_hash_of(self, resident_id: str) -> str | None:
        """The synced phone hash a resident's parcels are filed under (iris pickup), if any."""
        with self._db.read() as s:
            row = s.get(ResidentRow, resident_id)
        return row.phone_hash if row is not None else None

    def identify_by_phone(self, raw_phone: str) -> Resident:
        if not isinstance(raw_phone, str):
            raise IdentityError("bad_phone", "a phone number is typed as digits")
        try:
            phone = normalise_phone(raw_phone)
        except InvalidPhone as exc:
            raise IdentityError("bad_phone", str(exc)) from None
        wanted = phone_hash(self._site_id, phone)
        with self._db.read() as s:
            row = s.scalar(select(ResidentRow).where(ResidentRow.phone_hash == wanted))
        if row is None:
            raise IdentityError("unknown_resident",
                                "this number is not registered at this station; "
                                "please use the QR code in the community app or ask staff")
        return Resident(row.resident_id, row.name_masked, row.phone_masked or mask_phone(phone),
                        "phone", Assurance.LOW.value)
