"""Words the console shows for the platform's codes (statuses, categories, levels), as English
message ids the console translates, and phone numbers masked whatever a station sent.

No Flask here: `N_` only marks a string for extraction (pybabel -k N_); the app translates."""
from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

# The communities the console serves keep Beijing time; the database keeps UTC.
LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def N_(message: str) -> str:  # noqa: N802 - the gettext convention
    return message


STATUS_NAMES = {
    "new": N_("new"),
    "received": N_("received"),
    "in_progress": N_("in progress"),
    "done": N_("done"),
    "closed": N_("closed"),
    "pending": N_("waiting"),
    "approved": N_("approved"),
    "rejected": N_("refused"),
    "cancelled": N_("cancelled"),
}
CATEGORY_NAMES = {
    "home_care": N_("home care"),
    "repair": N_("repair"),
    "errand": N_("errand"),
    "other": N_("other"),
    "emergency": N_("emergency"),
    "letter": N_("letter to the secretary"),
    "found_item": N_("found something"),
}
LEVEL_NAMES = {"district": N_("district"), "street": N_("street"), "community": N_("community")}

_PHONE = re.compile(r"(?<!\d)(1\d{2})\d{4}(\d{4})(?!\d)")


def masked_phone(value: object) -> str:
    """A phone as 138****5678. Stations send phones masked already (the contract's rule);
    anything else that looks like a mobile number is masked here, never shown whole."""
    if not value:
        return ""
    return _PHONE.sub(r"\1****\2", str(value))


def local_time(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
