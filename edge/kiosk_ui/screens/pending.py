"""A choice made before identifying (a slot, an activity sign-up) survives identification.

A resident who taps 「预约 10:00」 is asked who they are first. The tap is kept in the
server-side visit (ADR 0061, never in the cookie) and, once they are identified, completed
on their behalf: the same view runs with the same form, so its checks, flash message and
next screen are the ones a direct tap gets (ADR 0125). Only views marked to carry a choice
are kept (never iris enrolment or anything else that needs its own consent), and a choice is
dropped when the person walks away from identifying to another screen.
"""
from __future__ import annotations

from typing import Any

from flask import current_app, request, session
from werkzeug.datastructures import ImmutableMultiDict

PENDING_KEY = "pending_choice"
# Screens that are part of identifying: visiting them keeps the choice waiting.
IDENTIFYING_BLUEPRINTS = frozenset({"identify", "iris", "live", "static"})
# Fields of a form that belong to the page, not to the choice.
_PAGE_FIELDS = frozenset({"csrf_token"})


def remember_choice() -> None:
    """Keep the current POST (its view and form) to complete after identification."""
    session[PENDING_KEY] = {
        "endpoint": request.endpoint,
        "view_args": dict(request.view_args or {}),
        "form": {key: value for key, value in request.form.items() if key not in _PAGE_FIELDS},
    }


def has_choice() -> bool:
    return PENDING_KEY in session


def complete_choice() -> Any | None:
    """Run the kept choice now that someone is identified: the view's own response (its
    redirect and flash), or None when nothing was waiting."""
    choice = session.pop(PENDING_KEY, None)
    if not choice or choice.get("endpoint") not in current_app.view_functions:
        return None
    view = current_app.view_functions[choice["endpoint"]]
    # The view reads request.form: give it the form of the original tap (werkzeug's cached
    # property is writable per request; the identify form it replaces is already handled).
    request.form = ImmutableMultiDict(choice["form"])  # type: ignore[misc]
    return view(**choice["view_args"])


def forget_when_walking_away() -> None:
    """before_request: a GET to any other screen means the person gave up on identifying."""
    if (request.method == "GET" and PENDING_KEY in session
            and request.blueprint not in IDENTIFYING_BLUEPRINTS and request.endpoint != "static"):
        session.pop(PENDING_KEY, None)
