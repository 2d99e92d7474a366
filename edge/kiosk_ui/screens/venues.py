"""Venue booking: rooms, a day of free and taken slots, ask for one, see and cancel mine."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from edge.kiosk_ui.screens.common import (
    N_,
    assurance_required,
    controller,
    domain_errors,
    error_message,
    may,
    resident,
    resident_object,
    resident_required_keeping_choice,
    safe_next,
    service,
    site_zone,
)

bp = Blueprint("venues", __name__, url_prefix="/venues")


@bp.app_template_filter("local_photo")
def local_photo(url: str | None) -> bool:
    """A venue photo the kiosk may show: inline (data:image/...) or under the app's own
    /static/. Anything else would make the kiosk fetch from elsewhere: `//host/x.png` is
    another host, and browsers read `/\\host` the same way."""
    if not url:
        return False
    if url.startswith("data:image/"):
        return True
    return url.startswith("/static/") and "\\" not in url and ".." not in url and "//" not in url


DAYS_AHEAD = 7  # the day view offers today and the next six days
# A state is always an icon and a word, never a colour alone.
SLOT_STATES = {"free": ("circle", N_("Free")), "taken": ("x", N_("Taken")),
               "pending": ("clock", N_("Waiting for approval")), "mine": ("star", N_("Your booking")),
               "closed": ("minus", N_("Closed")), "past": ("minus", N_("Past"))}
BOOKING_STATES = {"pending": ("clock", N_("Pending approval")), "approved": ("check", N_("Approved")),
                  "rejected": ("x", N_("Not approved")), "cancelled": ("minus", N_("Cancelled"))}


@bp.context_processor
def _state_words() -> dict[str, Any]:
    return {"slot_icons": {k: v[0] for k, v in SLOT_STATES.items()},
            "slot_words": {k: v[1] for k, v in SLOT_STATES.items()},
            "booking_icons": {k: v[0] for k, v in BOOKING_STATES.items()},
            "booking_words": {k: v[1] for k, v in BOOKING_STATES.items()}}


@bp.get("/")
def list_venues() -> Any:
    return render_template("venues.html", venues=service("catalogue").venues())


@bp.get("/<venue_id>")
def day_view(venue_id: str) -> Any:
    from edge.community import CatalogueError

    today = controller().clock.now().astimezone(site_zone()).date()
    day = _day_arg(today)
    try:
        venue = service("catalogue").venue(venue_id)
    except CatalogueError:
        abort(404)
    who = resident()
    # Which slots are "mine" is the resident's data: shown only at HIGH assurance (ADR 0115).
    slots = service("bookings").day_slots(venue_id, day, who["resident_id"] if may("see_own_data") else None)
    days = [today + timedelta(days=n) for n in range(DAYS_AHEAD)]
    return render_template("venue_day.html", venue=venue, day=day, days=days, slots=slots)


@bp.post("/<venue_id>/book")
@resident_required_keeping_choice
def book(venue_id: str) -> Any:
    try:
        start = datetime.fromisoformat(request.form.get("start", ""))
        service("bookings").request(resident_object(), venue_id, start)
    except ValueError:
        flash(_("Please pick a time from the list."), "error")
    except domain_errors() as exc:
        flash(error_message(exc), "error")
    else:
        flash(_("Booking sent. It is pending approval: you will see the answer here."), "success")
        return redirect(url_for("venues.mine"))
    return redirect(url_for("venues.day_view", venue_id=venue_id))


@bp.get("/mine")
@assurance_required("see_own_data")
def mine() -> Any:
    catalogue = service("catalogue")
    names = {venue.id: venue.name for venue in catalogue.venues()}
    bookings = service("bookings").bookings_of(resident()["resident_id"])
    return render_template("venue_mine.html", bookings=bookings, names=names)


@bp.post("/mine/<booking_id>/cancel")
@assurance_required("cancel_booking")
def cancel(booking_id: str) -> Any:
    try:
        service("bookings").cancel(resident_object(), booking_id)
    except domain_errors() as exc:
        flash(error_message(exc), "error")
    else:
        flash(_("Your booking is cancelled."), "success")
    return redirect(safe_next(url_for("venues.mine")))  # 我的服务 cancels here too


def _day_arg(today: date) -> date:
    try:
        day = date.fromisoformat(request.args.get("day", ""))
    except ValueError:
        return today
    return day if today <= day < today + timedelta(days=DAYS_AHEAD) else today
