"""Sending a parcel (寄件): company, size and the send code from the courier company's app (or
nothing more when the resident has identified); then the door, huge. A courier of the company
takes outgoing parcels from the courier screen (courier.outgoing)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from edge.kiosk_ui.screens.common import controller, error_message, resident, service

bp = Blueprint("sending", __name__, url_prefix="/send")


@bp.get("/")
def start() -> Any:
    return render_template("send.html", companies=controller().settings.locker.send_companies,
                           who=resident())


@bp.post("/")
def submit() -> Any:
    from edge.locker.errors import LockerError

    who = resident()
    try:
        view = service("locker").start_send(
            request.form.get("company", ""), request.form.get("size", ""),
            send_code=None if who else request.form.get("send_code", "").strip(),
            resident_id=who["resident_id"] if who else None)
    except LockerError as exc:
        flash(_send_refusal(exc), "error")
        return redirect(url_for("sending.start"))
    session["sends"] = [*session.get("sends", []), view.send_id]
    return redirect(url_for("sending.door", send_id=view.send_id))


@bp.get("/door/<send_id>")
def door(send_id: str) -> Any:
    if send_id not in session.get("sends", []):
        return redirect(url_for("sending.start"))
    return render_template("send_door.html", view=service("locker").send_status(send_id))


def _send_refusal(exc: Exception) -> str:
    """A refused send in the resident's words: which doors did not open, and that nothing is
    lost (the send code still works); else the locker's usual message."""
    code = getattr(exc, "code", "")
    if code == "send_code_used":
        return _("This send code has already been used to send a parcel.")
    not_opened = getattr(exc, "details", {}).get("not_opened")
    if code in ("door_not_opened", "board_unreachable") and not_opened:
        return _("Door %(doors)s did not open, and staff have been told. Nothing was sent and your send "
                 "code still works: please try again later or ask staff.",
                 doors=_(", ").join(str(n) for n in not_opened))
    return error_message(exc)
