"""Rate a service: five big buttons with numbers and words, and an optional comment."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from edge.kiosk_ui.screens.common import (
    N_,
    domain_errors,
    error_message,
    resident,
    resident_object,
    service,
)

bp = Blueprint("feedback", __name__, url_prefix="/feedback")
RATINGS = ((1, N_("Very poor")), (2, N_("Poor")), (3, N_("OK")), (4, N_("Good")), (5, N_("Very good")))


@bp.get("/")
def form() -> Any:
    return render_template("feedback.html", ratings=RATINGS,
                           services=service("catalogue").services(),
                           chosen=request.args.get("service", ""))


@bp.post("/")
def submit() -> Any:
    service_id = request.form.get("service_id", "")
    try:
        rating = int(request.form.get("rating", ""))
    except ValueError:
        flash(_("Please choose a rating from 1 to 5."), "error")
        return redirect(url_for("feedback.form", service=service_id))
    try:
        service("feedback").submit(resident_object() if resident() else None, service_id, rating,
                                   request.form.get("comment", ""))
    except domain_errors() as exc:
        flash(error_message(exc), "error")
        return redirect(url_for("feedback.form", service=service_id))
    flash(_("Thank you for your rating."), "success")
    return redirect(url_for("kiosk.home"))
