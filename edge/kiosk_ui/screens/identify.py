"""Who is at the screen: a resident scans their personal QR code or types their phone number;
for acts a typed phone is not enough for, the one-time code texted to that phone (ADR 0115)."""
from __future__ import annotations

import dataclasses
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from edge.kiosk_ui.screens.common import (
    controller,
    domain_errors,
    error_message,
    resident,
    safe_next,
    service,
    visit_assurance,
)
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


@bp.get("/otp")
def otp() -> Any:
    """Confirm a typed phone with the code the platform texts to it (or scan the QR code)."""
    target = safe_next(url_for("kiosk.home"))
    who = resident()
    if who is None:
        return redirect(url_for("identify.choose", next=target))
    if visit_assurance() == "high":
        return redirect(target)
    codes = controller().services.otp
    return render_template("identify_otp.html", next=target, phone_masked=who.get("phone_masked", ""),
                           available=codes is not None and codes.available)


@bp.post("/otp/send")
def otp_send() -> Any:
    target = safe_next(url_for("kiosk.home"))
    who = resident()
    if who is None:
        return redirect(url_for("identify.choose", next=target))
    try:
        service("otp").request(who["resident_id"], controller().settings.mqtt.device_id)
    except domain_errors() as exc:
        flash(error_message(exc), "error")
    else:
        flash(_("We sent a code to %(phone)s. It is valid for 5 minutes.", phone=who.get("phone_masked", "")),
              "success")
    return redirect(url_for("identify.otp", next=target))


@bp.post("/otp")
def otp_check() -> Any:
    target = safe_next(url_for("kiosk.home"))
    who = resident()
    if who is None:
        return redirect(url_for("identify.choose", next=target))
    try:
        level = service("otp").verify(who["resident_id"], request.form.get("otp", ""),
                                      controller().settings.mqtt.device_id)
    except domain_errors() as exc:
        flash(error_message(exc), "error")
        return redirect(url_for("identify.otp", next=target))
    session["resident"] = {**who, "assurance": level.value}
    flash(_("Thank you. It is you."), "success")
    return redirect(target)
