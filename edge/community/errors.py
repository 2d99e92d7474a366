"""What community services refuse, as stable codes (the UI translates by code) and plain words."""
from __future__ import annotations


class CommunityError(Exception):
    """Bad input or a rule that says no. `code` is stable; `message` is plain English."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class CatalogueError(CommunityError):
    """A catalogue.sync payload was refused, or a looked-up item is not in the catalogue."""


class IdentityError(CommunityError):
    """codes: forged, expired, malformed, unknown_resident, bad_phone."""


class BookingError(CommunityError):
    pass


class ActivityError(CommunityError):
    pass


class RequestError(CommunityError):
    pass


class FeedbackError(CommunityError):
    pass
