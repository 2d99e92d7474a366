"""Parcel pickup: the 8-digit code on a keypad, or the pickup QR; then the open door, huge."""
from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from edge.kiosk_ui.screens.common import controller, error_message, service
from edge.kiosk_ui.screens.live import hub, show_to_simulated_camera
from edge.locker.codes import CODE_DIGITS

bp = Blueprint("pickup", __name__, url_prefix="/pickup")


@bp.get("/")
def enter_code() -> Any:
    settings = controller().settings
    return render_template("pickup.html", code_digits=CODE_DIGITS, simulate=settings.simulate,
                           can_scan=controller().services.qr_scanner is not None)


@bp.post("/code")
def by_code() -> Any:
    code = "".join(ch for ch in request.form.get("code", "") if not ch.isspace())
    if len(code) != CODE_DIGITS or not (code.isascii() and code.isdigit()):
        flash(_("The pickup code has 8 digits. Please check the message you received."), "error")
        return redirect(url_for("pickup.enter_code"))
    return _open(lambda locker: locker.pickup_with_code(code, kiosk_id=controller().settings.mqtt.device_id))


@bp.post("/scan")
def by_scan() -> Any:
    token = hub().take_scan()
    if token is None:
        flash(_("No code was scanned. Please hold your code under the scanner."), "error")
        return redirect(url_for("pickup.enter_code"))
    return _open(lambda locker: locker.pickup_with_token(token))


@bp.post("/token")
def by_typed_token() -> Any:
    """Simulate mode only: the pickup QR's text pasted where the scanner would have read it."""
    if not controller().settings.simulate:
        return redirect(url_for("pickup.enter_code"))
    token = request.form.get("token", "").strip()
    if show_to_simulated_camera(token):
        return redirect(url_for("pickup.enter_code"))  # the page's scanner reads it, then submits
    return _open(lambda locker: locker.pickup_with_token(token))


@bp.get("/door/<parcel_id>")
def door(parcel_id: str) -> Any:
    if parcel_id not in session.get("pickups", []):
        return redirect(url_for("pickup.enter_code"))
    view = service("locker").pickup_status(parcel_id)
    return render_template("pickup_door.html", view=view)


@bp.post("/door/<parcel_id>/next")
def next_door(parcel_id: str) -> Any:
    """One code, every parcel: open this visit's resident's next door."""
    from edge.locker.errors import LockerError

    if parcel_id not in session.get("pickups", []):
        return redirect(url_for("pickup.enter_code"))
    locker = service("locker")
    try:
        view = locker.open_next_door(locker.pickup_status(parcel_id).pickup_id)
    except LockerError as exc:
        flash(error_message(exc), "error")
        return redirect(url_for("pickup.door", parcel_id=parcel_id))
    session["pickups"] = [*session.get("pickups", []), view.parcel_id]
    return redirect(url_for("pickup.door", parcel_id=view.parcel_id))


@bp.post("/door/<parcel_id>/refuse")
def refuse(parcel_id: str) -> Any:
    """「拒收」 on the door screen: only for a parcel this visit opened."""
    from edge.locker.errors import LockerError

    if parcel_id not in session.get("pickups", []):
        return redirect(url_for("pickup.enter_code"))
    locker = service("locker")
    try:
        locker.refuse_parcel(locker.pickup_status(parcel_id).pickup_id, request.form.get("reason", ""))
    except LockerError as exc:
        flash(error_message(exc), "error")
    return redirect(url_for("pickup.door", parcel_id=parcel_id))


def _open(attempt: Any) -> Any:
    from edge.locker.errors import CodeUsed, CoolingDown, LockerError, WrongCode

    try:
        view = attempt(service("locker"))
    except WrongCode as exc:
        flash(ngettext("That code is not right. You can try %(num)d more time.",
                       "That code is not right. You can try %(num)d more times.",
                       exc.attempts_left), "error")
        return redirect(url_for("pickup.enter_code"))
    except CodeUsed as exc:
        flash(ngettext("That pickup code has already been used. You can try %(num)d more time.",
                       "That pickup code has already been used. You can try %(num)d more times.",
                       exc.attempts_left), "error")
        return redirect(url_for("pickup.enter_code"))
    except CoolingDown as exc:
        minutes = max(1, math.ceil(exc.seconds_left / 60))
        flash(ngettext("Too many wrong codes. Please try again in %(num)d minute.",
                       "Too many wrong codes. Please try again in %(num)d minutes.", minutes), "error")
        return redirect(url_for("pickup.enter_code"))
    except LockerError as exc:
        flash(error_message(exc), "error")
        return redirect(url_for("pickup.enter_code"))
    session["pickups"] = [*session.get("pickups", []), view.parcel_id]
    return redirect(url_for("pickup.door", parcel_id=view.parcel_id))
