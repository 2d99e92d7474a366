"""Who is at the screen: a resident scans their personal QR code or types their phone number."""
from __future__ import annotations

import dataclasses
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from edge.kiosk_ui.screens.common import controller, domain_errors, error_message, safe_next, service
from edge.kiosk_ui.screens.live import hub, show_to_simulated_camera
from edge.kiosk_ui.screens.pending import complete_choice

bp = Blueprint("identify", __name__, url_prefix="/identify")


@bp.get("/")
def choose() -> Any:
    return render_template("identify.html", next=safe_next(url_for("kiosk.home")),
                           simulate=controller().settings.simulate)


@bp.post("/phone")
def by_phone() -> Any:
    return _identify(lambda residents: residents.identify_by_phone(request.form.get("phone", "")))


@bp.post("/token")
def by_typed_token() -> Any:
    """Simulate mode only: a token pasted where the scanner would have read it."""
    if not controller().settings.simulate:
        return redirect(url_for("identify.choose"))
    token = request.form.get("token", "").strip()
    if show_to_simulated_camera(token):  # the page's scanner reads it, then submits
        return redirect(url_for("identify.choose", next=safe_next(url_for("kiosk.home"))))
    return _identify(lambda residents: residents.identify_by_token(token))


@bp.post("/scan")
def by_scan() -> Any:
    code = hub().take_scan()
    if code is None:
        flash(_("No code was scanned. Please hold your code under the scanner."), "error")
        return redirect(url_for("identify.choose", next=safe_next(url_for("kiosk.home"))))
    return _identify(lambda residents: residents.identify_by_token(code))


def _identify(lookup: Any) -> Any:
    target = safe_next(url_for("kiosk.home"))
    try:
        found = lookup(service("residents"))
    except domain_errors() as exc:
        flash(error_message(exc), "error")
        return redirect(url_for("identify.choose", next=target))
    session["resident"] = dataclasses.asdict(found)
    flash(_("Welcome, %(name)s.", name=found.name_masked), "success")
    return complete_choice() or redirect(target)  # a slot tapped before identifying is booked now
