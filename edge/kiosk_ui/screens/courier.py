"""Courier deposit: courier code, waybill, recipient's mobile, size; then the door, huge.

Each step keeps its answer in the server-side session; the phone number is shown masked only.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from edge.kiosk_ui.screens.common import controller, error_message, service
from edge.kiosk_ui.screens.live import hub
from edge.locker.deposits import SIZES
from edge.privacy import InvalidPhone, mask_phone, normalise_phone

bp = Blueprint("courier", __name__, url_prefix="/courier")


@bp.get("/")
def identify() -> Any:
    return render_template("courier_identify.html", can_scan=controller().services.qr_scanner is not None)


@bp.post("/")
def identify_submit() -> Any:
    return _log_in(request.form.get("courier_code", ""))


@bp.post("/scan")
def identify_by_badge() -> Any:
    """A courier badge read by the QR scanner carries the courier code."""
    code = hub().take_scan()
    if code is None:
        flash(_("No code was scanned. Please hold your code under the scanner."), "error")
        return redirect(url_for("courier.identify"))
    return _log_in(code)


def _log_in(courier_code: str) -> Any:
    """Typed or scanned, a courier code opens the courier's session or says why not."""
    from edge.locker.errors import LockerError

    try:
        courier = service("locker").courier_log_in(courier_code, controller().settings.mqtt.device_id)
    except LockerError as exc:
        flash(error_message(exc), "error")
        return redirect(url_for("courier.identify"))
    session["courier_id"] = courier.id
    return redirect(url_for("courier.waybill"))


@bp.route("/waybill", methods=["GET", "POST"])
def waybill() -> Any:
    if "courier_id" not in session:
        return redirect(url_for("courier.identify"))
    if request.method == "GET":
        return render_template("courier_waybill.html")
    from edge.locker.errors import LockerError

    try:  # malformed, or already in this locker: said before the phone and size steps
        number = service("locker").check_waybill(session["courier_id"], request.form.get("waybill", ""))
    except LockerError as exc:
        flash(error_message(exc), "error")
        return redirect(url_for("courier.waybill"))
    session["waybill"] = number
    return redirect(url_for("courier.recipient"))


@bp.route("/recipient", methods=["GET", "POST"])
def recipient() -> Any:
    if "waybill" not in session:
        return redirect(url_for("courier.waybill"))
    if request.method == "GET":
        return render_template("courier_phone.html", waybill=session["waybill"])
    try:
        session["recipient_phone"] = normalise_phone(request.form.get("phone", ""))
    except InvalidPhone:
        flash(_("A mobile number has 11 digits and starts with 1."), "error")
        return redirect(url_for("courier.recipient"))
    return redirect(url_for("courier.size"))


@bp.route("/size", methods=["GET", "POST"])
def size() -> Any:
    if "recipient_phone" not in session:
        return redirect(url_for("courier.recipient"))
    if request.method == "GET":
        return render_template("courier_size.html", waybill=session["waybill"],
                               phone_masked=mask_phone(session["recipient_phone"]))
    chosen = request.form.get("size", "")
    if chosen not in SIZES:
        flash(_("Please choose a size."), "error")
        return redirect(url_for("courier.size"))
    return _deposit_or_retry(
        lambda locker: locker.start_deposit(session["courier_id"], session["waybill"],
                                            session["recipient_phone"], chosen),
        url_for("courier.size"))


@bp.get("/door/<deposit_id>")
def door(deposit_id: str) -> Any:
    view = _own_deposit(deposit_id)
    if view is None:
        return redirect(url_for("courier.identify"))
    return render_template("courier_door.html", view=view)


@bp.post("/door/<deposit_id>/closed")
def closed(deposit_id: str) -> Any:
    """"I closed the door": the locker decides from the latch, not from this button."""
    view = _own_deposit(deposit_id)
    if view is None:
        return redirect(url_for("courier.identify"))
    if view.state != "deposited":
        flash(_("The door still looks open. Please push it shut until it clicks."), "error")
        return redirect(url_for("courier.door", deposit_id=deposit_id))
    _forget_parcel()
    flash(_("Parcel stored in door %(number)s. The resident gets a message.",
            number=view.compartment), "success")
    return redirect(url_for("courier.waybill"))


@bp.post("/door/<deposit_id>/not-opened")
def not_opened(deposit_id: str) -> Any:
    if _own_deposit(deposit_id) is None:
        return redirect(url_for("courier.identify"))
    flash(_("Sorry about that. Please use the new door below."), "info")
    return _deposit_or_retry(lambda locker: locker.report_door_not_opened(deposit_id),
                             url_for("courier.door", deposit_id=deposit_id))


@bp.post("/door/<deposit_id>/reopen")
def reopen(deposit_id: str) -> Any:
    if _own_deposit(deposit_id) is None:
        return redirect(url_for("courier.identify"))
    return _deposit_or_retry(lambda locker: locker.reopen_deposit(deposit_id),
                             url_for("courier.door", deposit_id=deposit_id))


@bp.post("/door/<deposit_id>/cancel")
def cancel(deposit_id: str) -> Any:
    if _own_deposit(deposit_id) is None:
        return redirect(url_for("courier.identify"))
    from edge.locker.errors import LockerError

    try:
        service("locker").cancel_deposit(deposit_id)
    except LockerError as exc:
        flash(error_message(exc), "error")
        return redirect(url_for("courier.door", deposit_id=deposit_id))
    _forget_parcel()
    flash(_("Cancelled. Please take the parcel back."), "info")
    return redirect(url_for("courier.waybill"))


def _own_deposit(deposit_id: str) -> Any:
    if deposit_id not in session.get("deposits", []):
        return None
    return service("locker").deposit_status(deposit_id, courier_id=session.get("courier_id"))


def _deposit_or_retry(action: Any, retry_url: str) -> Any:
    from edge.locker.errors import LockerError

    try:
        view = action(service("locker"))
    except LockerError as exc:
        flash(error_message(exc), "error")
        return redirect(retry_url)
    session["deposits"] = [*session.get("deposits", []), view.deposit_id]
    return redirect(url_for("courier.door", deposit_id=view.deposit_id))


def _forget_parcel() -> None:
    """The next parcel starts from its waybill; the courier stays identified."""
    for key in ("waybill", "recipient_phone"):
        session.pop(key, None)


@bp.get("/outgoing")
def outgoing() -> Any:
    """Outgoing parcels (寄件) waiting for this courier's company."""
    if "courier_id" not in session:
        return redirect(url_for("courier.identify"))
    locker = service("locker")
    compartments = locker.snapshot()
    return render_template(
        "courier_outgoing.html", parcels=locker.sends_waiting_for(session["courier_id"]),
        refused=[r for r in locker.returns_for(session["courier_id"]) if r["why"] == "refused"],
        out_of_service=[c for c in compartments if c.get("maintenance")],
        refusal_words={"damaged": _("damaged"), "wrong": _("wrong item"), "short": _("items missing")})


@bp.post("/refused/<parcel_id>")
def take_back_refused(parcel_id: str) -> Any:
    """A parcel the resident refused, back to its courier company."""
    return _open_for_courier(lambda locker, courier_id: locker.return_parcel(courier_id, parcel_id))


@bp.post("/outgoing/<send_id>")
def collect_outgoing(send_id: str) -> Any:
    """A resident's outgoing parcel, collected by a courier of its company."""
    return _open_for_courier(lambda locker, courier_id: locker.collect_send(courier_id, send_id))


def _open_for_courier(open_door: Any) -> Any:
    """Open a door for the logged-in courier on the outgoing screen; say which, or why not."""
    from edge.locker.errors import LockerError

    if "courier_id" not in session:
        return redirect(url_for("courier.identify"))
    try:
        view = open_door(service("locker"), session["courier_id"])
    except LockerError as exc:
        flash(error_message(exc), "error")
        return redirect(url_for("courier.outgoing"))
    flash(_("Door %(number)s is open. Take the parcel out and close the door.", number=view.compartment),
          "success")
    return redirect(url_for("courier.outgoing"))
