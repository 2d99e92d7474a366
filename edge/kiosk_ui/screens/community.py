"""Writing to the community: a letter to the community secretary (书记信箱) and "I found
something" (失物招领). Both are requests the platform's staff follow up; the reply shows in
我的服务, so the writer identifies first."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from edge.kiosk_ui.screens.common import (
    N_,
    domain_errors,
    error_message,
    resident_object,
    resident_required,
    service,
)

bp = Blueprint("community", __name__, url_prefix="/community")
# (request category, page title, what to write, where/what extra field, sent message)
FORMS = {
    "letter": (N_("Letter to the community secretary"),
               N_("Your letter (suggestions, problems, ideas)"), None,
               N_("Your letter is sent. The secretary's reply will appear in My services.")),
    "found_item": (N_("I found something"), N_("What did you find?"), N_("Where did you find it?"),
                   N_("Thank you! Please hand the item in at the front desk. Staff will reply in My services.")),
}


@bp.get("/letter")
@resident_required
def letter_form() -> Any:
    return _form("letter")


@bp.post("/letter")
@resident_required
def send_letter() -> Any:
    return _send("letter", "community.letter_form")


@bp.get("/found")
@resident_required
def found_form() -> Any:
    return _form("found_item")


@bp.post("/found")
@resident_required
def report_found() -> Any:
    return _send("found_item", "community.found_form")


def _form(category: str) -> Any:
    title, text_label, place_label, _sent = FORMS[category]
    return render_template("community_write.html", title=title, text_label=text_label,
                           place_label=place_label, category=category,
                           draft=session.get(f"{category}_draft", {}))


def _send(category: str, form_endpoint: str) -> Any:
    text, place = request.form.get("text", ""), request.form.get("place", "")
    try:
        service("requests").submit(resident_object(), category, text, place or None, None)
    except domain_errors() as exc:
        session[f"{category}_draft"] = {"text": text, "place": place}  # nothing typed is lost
        flash(error_message(exc), "error")
        return redirect(url_for(form_endpoint))
    session.pop(f"{category}_draft", None)
    flash(_(FORMS[category][3]), "success")
    return redirect(url_for("mine.overview"))
