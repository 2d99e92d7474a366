"""Activities: places left, sign up ahead, sign in on the day (scan or phone)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from edge.kiosk_ui.screens.common import (
    controller,
    domain_errors,
    error_message,
    may,
    resident,
    resident_object,
    resident_required_keeping_choice,
    service,
)

bp = Blueprint("activities", __name__, url_prefix="/activities")


@bp.get("/")
def list_activities() -> Any:
    activities = service("activities")
    who = resident()
    now = controller().clock.now()
    listed = service("catalogue").activities()
    # Places left and this resident's sign-ups for the whole list at once (two queries, not
    # two per activity).
    board = activities.board(listed, who["resident_id"] if may("see_own_data") else None)
    rows = [{"activity": a, "places_left": left, "mine": mine,
             "signin_open": a.signin_opens_at <= now <= a.signin_closes_at}
            for a, (left, mine) in zip(listed, board)]
    return render_template("activities.html", rows=rows)


@bp.post("/<activity_id>/sign-up")
@resident_required_keeping_choice
def sign_up(activity_id: str) -> Any:
    return _attend(lambda: service("activities").sign_up(resident_object(), activity_id),
                   _("You are signed up. See you there!"))


@bp.post("/<activity_id>/sign-in")
@resident_required_keeping_choice
def sign_in(activity_id: str) -> Any:
    return _attend(lambda: service("activities").sign_in(resident_object(), activity_id),
                   _("You are signed in. Welcome!"))


def _attend(action: Any, done: str) -> Any:
    try:
        action()
    except domain_errors() as exc:
        flash(error_message(exc), "error")
    else:
        flash(done, "success")
    return redirect(url_for("activities.list_activities"))
