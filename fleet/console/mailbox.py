"""书记信箱 / 意见箱: letters residents write at a kiosk to their community secretary.

A letter is a service request of category `letter` (ADR 0127): it arrives as
request.submitted, is projected into help_requests like any request, and is answered with
request.update, which the kiosk shows under 我的服务. This module only narrows the follow-up
of requests (followup.py) to letters; the visibility rule, the 24-hour clock, the reply
(followup.update_request) and its command are the same ones."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from fleet.console import followup
from fleet.console.accounts import Staff, can_see_station
from fleet.console.followup import NotFound

LETTER = "letter"


def letters(conn: psycopg.Connection, staff: Staff, now: datetime,
            station: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """The staff member's letters (their stations, or one of them), newest first."""
    if station is not None and not can_see_station(conn, staff, *station):
        raise NotFound("/".join(station))
    return followup.help_requests(conn, staff, now, category=LETTER, station=station)

