"""Small functions the composition root (edge/app.py) hands from one part to another, so
that no domain package imports another: identity's token check given to community, the
locker's remote open given to the bridge's command router."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from edge.community.errors import IdentityError
from edge.community.residents import ResidentTokenCheck
from edge.identity.tokens import ResidentTokenVerifier, TokenError


def resident_token_check(verifier: ResidentTokenVerifier) -> ResidentTokenCheck:
    """Identity's token verifier as the check community's ResidentDirectory is handed:
    (resident id, masked name), or the refusal as IdentityError (forged, expired, malformed)."""
    def check(token: str, now: datetime) -> tuple[str, str]:
        try:
            claim = verifier.verify(token, now, role="resident")
        except TokenError as exc:
            code = exc.code if exc.code in ("forged", "expired") else "malformed"
            raise IdentityError(code, str(exc)) from None
        return claim.subject_id, claim.masked_name

    return check


def open_remote(locker: Any, data: dict[str, Any]) -> dict[str, Any]:
    """A remote open the status did not confirm is a failed command for the operator, not ok."""
    from edge.locker.errors import DoorDidNotOpen

    result = locker.open_remote(data["compartment"], data["operator"], data["reason"])
    if not result["opened"]:
        raise DoorDidNotOpen(f"compartment {result['compartment']} did not open: {result['error']}")
    return result


def maintenance_remote(locker: Any, data: dict[str, Any]) -> dict[str, Any]:
    """`compartment.maintenance` from the operations centre: out of service or back, audited."""
    from edge.storage import Actor

    return locker.set_maintenance(data["compartment"], data["maintenance"], data.get("reason", ""),
                                  Actor.REMOTE, data["operator"])
