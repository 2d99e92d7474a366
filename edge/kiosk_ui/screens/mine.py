"""我的服务 (my services): an identified resident's bookings, activities, help requests and
feedback, with staff's follow-up shown as a light with an icon and a word (green: done,
yellow: in progress, red: not finished after 24 hours), updated live when the platform's
request.update arrives. With low assurance (a typed phone number) only statuses show."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, redirect, render_template, session, url_for
from flask_babel import gettext as _

from edge.kiosk_ui.screens.common import (
    N_,
    can_see_private,
    controller,
    domain_errors,
    error_message,
    resident,
    resident_object,
    resident_required,
    service,
)
from edge.kiosk_ui.screens.help import CATEGORIES as HELP_CATEGORIES
from edge.kiosk_ui.screens.venues import BOOKING_STATES

bp = Blueprint("mine", __name__, url_prefix="/mine")

# A follow-up's stage as the resident sees it: (icon, light, words). Colour is never alone.
STAGES = {"received": ("clock", "yellow", N_("Received, waiting for staff")),
          "in_progress": ("clock", "yellow", N_("In progress")),
          "done": ("check", "green", N_("Done by staff")),
          "closed": ("check", "green", N_("Closed by staff")),
          "overdue": ("alert", "red", N_("Overdue: not finished after 24 hours"))}
KINDS = {key: (symbol, label) for key, symbol, label in HELP_CATEGORIES}
KINDS.update({"emergency": ("phone", N_("Emergency")), "feedback": ("star", N_("Feedback"))})


@bp.context_processor
def _words() -> dict[str, Any]:
    return {"stages": STAGES, "kinds": KINDS,
            "booking_icons": {k: v[0] for k, v in BOOKING_STATES.items()},
            "booking_words": {k: v[1] for k, v in BOOKING_STATES.items()}}


@bp.get("/")
@resident_required
def overview() -> Any:
    who = resident()
    resident_id, now = who["resident_id"], controller().clock.now()
    catalogue = service("catalogue")
    activities = {a.id: a for a in catalogue.activities()}
    return render_template(
        "mine.html", private=can_see_private(who), now=now,
        follow_ups=service("requests").follow_ups_of(resident_id),
        bookings=[b for b in service("bookings").bookings_of(resident_id) if b.end > now],
        venue_names={venue.id: venue.name for venue in catalogue.venues()},
        signups=[(s, activities[s.activity_id]) for s in service("activities").signups_of(resident_id)
                 if activities[s.activity_id].ends_at > now])


@bp.post("/activities/<activity_id>/cancel")
@resident_required
def cancel_sign_up(activity_id: str) -> Any:
    if not can_see_private(resident()):
        flash(_("To cancel, please scan your personal code from the app."), "error")
        return redirect(url_for("mine.overview"))
    try:
        service("activities").cancel_sign_up(resident_object(), activity_id)
    except domain_errors() as exc:
        flash(error_message(exc), "error")
    else:
        flash(_("Your sign-up is cancelled; the place is free for others."), "success")
    return redirect(url_for("mine.overview"))


def live_state_reader() -> Callable[[], dict[str, Any]]:
    """The "mine" live topic: each follow-up's stage (and, with high assurance, staff's reply
    and name) and each booking's state. Captures what it needs: it runs on the stream's thread."""
    who = session["resident"]
    services, clock, private = controller().services, controller().clock, can_see_private(who)
    requests, bookings, resident_id = services.requests, services.bookings, who["resident_id"]
    no_reply = _("No reply yet")

    def read() -> dict[str, Any]:
        now, state = clock.now(), {}
        for item in requests.follow_ups_of(resident_id):
            state[f"followup:{item.item_id}"] = item.stage(now)
            if private:
                state[f"reply:{item.item_id}"] = item.reply or no_reply
                state[f"staff:{item.item_id}"] = item.staff or "—"
        for booking in bookings.bookings_of(resident_id):
            state[f"booking:{booking.booking_id}"] = booking.state
        return state

    return read
