"""Home, language, large text and the end of a visit (idle timeout, sign out)."""
from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, session, url_for

from edge.kiosk_ui.screens.common import LANGUAGES, N_, controller, current_lang, safe_next

bp = Blueprint("kiosk", __name__)

# The tiles of the home screen, in the order residents look for them.
TILES = (
    ("pickup.enter_code", "package", N_("Collect a parcel")),
    ("venues.list_venues", "calendar", N_("Book a room")),
    ("activities.list_activities", "users", N_("Activities")),
    ("help.request_form", "help", N_("Ask for help")),
    ("notices.list_notices", "document", N_("Notices & policies")),
    ("services.list_services", "list", N_("Services")),
    ("feedback.form", "star", N_("Rate a service")),
    ("courier.identify", "truck", N_("Courier")),
    ("mine.overview", "check", N_("My services")),
)


@bp.get("/")
def home() -> Any:
    catalogue = controller().services.catalogue
    notices = catalogue.notices(kind="notice")[:3] if catalogue is not None else []
    return render_template("home.html", tiles=TILES, notices=notices)


@bp.post("/lang")
def switch_language() -> Any:
    current = current_lang()
    session["lang"] = LANGUAGES[(LANGUAGES.index(current) + 1) % len(LANGUAGES)]
    return redirect(safe_next(url_for("kiosk.home")))


@bp.post("/large-text")
def toggle_large_text() -> Any:
    session["large_text"] = not session.get("large_text", False)
    return redirect(safe_next(url_for("kiosk.home")))


@bp.post("/session/end")
def end_visit() -> Any:
    """Idle timeout or "Finish": forget everything this person entered, then go home."""
    end_session()
    return redirect(url_for("kiosk.home"))


@bp.post("/session/continue")
def continue_visit() -> Any:
    """"Still there? [Continue]": a request is enough to keep the server session alive."""
    return ("", 204)


def end_session() -> None:
    store = current_app.session_interface
    store.forget(session.sid)  # type: ignore[attr-defined]
    session.clear()
    session.sid = secrets.token_urlsafe(24)  # type: ignore[attr-defined]
