"""我的服务 (my services): an identified resident's bookings, activities, help requests and
feedback, with staff's follow-up shown as a light with an icon and a word (green: done,
yellow: in progress, red: not finished after 24 hours), updated live when the platform's
request.update arrives. With low assurance (a typed phone number) only statuses show."""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from markupsafe import Markup

from edge.kiosk_ui.screens.common import (
    N_,
    can_see_private,
    controller,
    domain_errors,
    error_message,
    pick,
    resident,
    resident_object,
    resident_required,
    service,
)
from edge.kiosk_ui.screens.feedback import RATINGS
from edge.kiosk_ui.screens.formatting import icon
from edge.kiosk_ui.screens.help import CATEGORIES as HELP_CATEGORIES
from edge.kiosk_ui.screens.venues import BOOKING_STATES

# How long after it ends a finished activity is still offered for rating.
RATING_WINDOW = timedelta(days=30)

bp = Blueprint("mine", __name__, url_prefix="/mine")

# A follow-up's stage as the resident sees it: (icon, light, words). Colour is never alone.
STAGES = {"received": ("clock", "yellow", N_("Received, waiting for staff")),
          "in_progress": ("clock", "yellow", N_("In progress")),
          "done": ("check", "green", N_("Done by staff")),
          "closed": ("check", "green", N_("Closed by staff")),
          "overdue": ("alert", "red", N_("Overdue: not finished after 24 hours"))}
KINDS = {key: (symbol, label) for key, symbol, label in HELP_CATEGORIES}
KINDS.update({"emergency": ("phone", N_("Emergency")), "feedback": ("star", N_("Feedback")),
              "letter": ("message", N_("Letter to the community secretary")),
              "found_item": ("package", N_("I found something"))})


@bp.context_processor
def _words() -> dict[str, Any]:
    # Each stage's light, its icon and words made once per page, not once per follow-up.
    lights = {key: (light, icon(symbol) + Markup(" ") + _(words))
              for key, (symbol, light, words) in STAGES.items()}
    return {"lights": lights, "kinds": KINDS,
            "booking_icons": {k: v[0] for k, v in BOOKING_STATES.items()},
            "booking_words": {k: v[1] for k, v in BOOKING_STATES.items()}}


@bp.get("/")
@resident_required
def overview() -> Any:
    who = resident()
    resident_id, now = who["resident_id"], controller().clock.now()
    catalogue = service("catalogue")
    # The catalogue is read once here and handed on, not again per booking or sign-up.
    # Those that ended lately too: a finished activity is there to be rated.
    listed = catalogue.activities(ended_since=now - RATING_WINDOW)
    activities = {a.id: a for a in listed}
    venues = {venue.id: venue for venue in catalogue.venues()}
    follow_ups = service("requests").follow_ups_of(resident_id)
    bookings = service("bookings").bookings_of(resident_id, venues)
    signups = [(s, activities[s.activity_id])
               for s in service("activities").signups_of(resident_id, listed)]
    venue_names = {venue_id: venue.name for venue_id, venue in venues.items()}
    private = can_see_private(who)
    return render_template(
        "mine.html", private=private, now=now, follow_ups=follow_ups, venue_names=venue_names,
        bookings=[b for b in bookings if b.end > now],
        signups=[(s, a) for s, a in signups if a.ends_at > now], ratings=RATINGS,
        to_rate=_to_rate(resident_id, now, follow_ups, bookings, signups, venue_names) if private else [])


def _to_rate(resident_id: str, now: Any, follow_ups: list[Any], bookings: list[Any],
             signups: list[Any], venue_names: dict[str, Any]) -> list[dict[str, Any]]:
    """What the resident finished here and has not rated yet, newest first."""
    rated = service("feedback").rated_by(resident_id)
    finished = [{"kind": "booking", "id": b.booking_id, "title": pick(venue_names.get(b.venue_id)),
                 "at": b.start} for b in bookings if b.state == "approved" and b.end <= now]
    finished += [{"kind": "activity", "id": a.id, "title": pick(a.title), "at": a.starts_at}
                 for _signup, a in signups if a.ends_at <= now]
    finished += [{"kind": "request", "id": f.item_id, "title": _(KINDS.get(f.category, KINDS["other"])[1]),
                  "at": f.submitted_at} for f in follow_ups
                 if f.kind == "request" and f.status in ("done", "closed")]
    return sorted((item for item in finished if (item["kind"], item["id"]) not in rated),
                  key=lambda item: item["at"], reverse=True)


@bp.post("/rate")
@resident_required
def rate() -> Any:
    """A star rating of a finished booking, activity or request (high assurance, like cancel)."""
    if not can_see_private(resident()):
        flash(_("To rate, please scan your personal code from the app."), "error")
        return redirect(url_for("mine.overview"))
    try:
        rating = int(request.form.get("rating", ""))
        service("feedback").rate_finished(resident_object(), request.form.get("kind", ""),
                                          request.form.get("subject_id", ""), rating)
    except ValueError:
        flash(_("Please choose a rating from 1 to 5."), "error")
    except domain_errors() as exc:
        flash(error_message(exc), "error")
    else:
        flash(_("Thank you for your rating."), "success")
    return redirect(url_for("mine.overview"))


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
