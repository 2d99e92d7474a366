"""Asking for help: the request form, and the emergency button (one confirmation, top priority)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from edge.kiosk_ui.screens.common import (
    N_,
    domain_errors,
    error_message,
    pick,
    resident,
    resident_object,
    service,
)

bp = Blueprint("help", __name__, url_prefix="/help")
CATEGORIES = (("home_care", "heart", N_("Home care")), ("repair", "tool", N_("Repairs")),
              ("errand", "cart", N_("Errands")), ("other", "message", N_("Something else")))
# One tap types a whole phrase: most requests need no typing at all.
QUICK_PHRASES = {
    "home_care": (N_("Please come with me to the doctor"), N_("I need meals brought to my home"),
                  N_("I need help with bathing"), N_("Please call me now and then to check on me")),
    "repair": (N_("The water pipe is leaking"), N_("The light does not work"),
               N_("The door lock is broken"), N_("The toilet is blocked")),
    "errand": (N_("Please buy medicine for me"), N_("Please buy groceries for me"),
               N_("Please collect a parcel for me"), N_("Please help me pay the bills")),
    "other": (N_("I would like someone to talk to"), N_("Please show me how to use my phone"),
              N_("Please call me back")),
}


# A voice note rides in the form (multipart): these screens take bodies up to the clip's bound.
VOICE_BODY_BYTES = 1024 * 1024 + 64 * 1024
VOICE_ENDPOINTS = {"help.submit_request", "help.emergency_voice"}
VOICE_WORDS = {
    "voice_empty": N_("The voice note was empty. Please record it again."),
    "voice_too_long": N_("A voice note can be at most 60 seconds."),
    "voice_not_audio": N_("The voice note could not be read. Please record it again."),
    "voice_outbox_full": N_("Your request was sent, but the voice note could not be kept: "
                            "the station is waiting for the network. Please describe it to staff."),
    "unknown_request": N_("We could not find that request. Please start again."),
}


@bp.before_app_request  # app-wide and registered first: before the CSRF check reads the form
def _allow_voice_bodies() -> None:
    if request.endpoint in VOICE_ENDPOINTS:
        request.max_content_length = VOICE_BODY_BYTES


@bp.get("/")
def request_form() -> Any:
    draft = _draft_for_service(request.args.get("service", "")) or session.get("help_draft", {})
    return render_template("help.html", categories=CATEGORIES, draft=draft, quick_phrases=QUICK_PHRASES,
                           simulate=_simulate())


def _draft_for_service(service_id: str) -> dict[str, str]:
    """One tap from the catalogue: the service's request category chosen and a first line
    written, so the resident can send it without typing (and may add to it)."""
    from edge.community import CatalogueError

    if not service_id:
        return {}
    try:
        chosen = service("catalogue").service(service_id)
    except CatalogueError:
        return {}
    if chosen.request_category is None:
        return {}
    return {"category": chosen.request_category,
            "description": _("I would like to apply for: %(service)s", service=pick(chosen.name))}


@bp.post("/")
def submit_request() -> Any:
    form = {key: request.form.get(key, "") for key in ("category", "description", "address", "phone")}
    if form["category"] not in {key for key, _icon, _label in CATEGORIES}:
        flash(_("Please choose what kind of help you need."), "error")
        return _back_to_form(form)
    try:
        sent = service("requests").submit(_resident_or_none(), form["category"], form["description"],
                                          form["address"], form["phone"])
    except domain_errors() as exc:
        flash(error_message(exc), "error")
        return _back_to_form(form)
    session.pop("help_draft", None)
    session["help_sent"] = {"next_steps": sent.next_steps, "phone_masked": sent.phone_masked}
    _attach_voice_note(sent.request_id)
    return redirect(url_for("help.sent"))


@bp.get("/sent")
def sent() -> Any:
    done = session.get("help_sent")
    if done is None:
        return redirect(url_for("help.request_form"))
    return render_template("help_sent.html", next_steps=pick(done["next_steps"]),
                           phone_masked=done["phone_masked"], emergency=False)


@bp.get("/emergency")
def emergency_confirm() -> Any:
    return render_template("emergency_confirm.html")


@bp.post("/emergency")
def emergency_submit() -> Any:
    try:
        sent = service("requests").submit(_resident_or_none(), "emergency",
                                          "Emergency button pressed at the kiosk", None, None,
                                          emergency=True)
    except domain_errors() as exc:
        flash(error_message(exc) + " " + _("Please call 120 or ask anyone nearby for help."), "error")
        return redirect(url_for("help.emergency_confirm"))
    session["help_sent"] = {"next_steps": sent.next_steps, "phone_masked": sent.phone_masked,
                            "emergency": True, "request_id": sent.request_id}
    return redirect(url_for("help.emergency_sent"))


@bp.get("/emergency/sent")
def emergency_sent() -> Any:
    done = session.get("help_sent")
    if done is None or not done.get("emergency"):
        return redirect(url_for("help.emergency_confirm"))
    return render_template("help_sent.html", next_steps=pick(done["next_steps"]),
                           phone_masked=None, emergency=True, simulate=_simulate(),
                           voice_sent=done.get("voice_sent", False))


@bp.post("/emergency/voice")
def emergency_voice() -> Any:
    """After the alert is out (one touch must be enough), the resident may add a voice note."""
    done = session.get("help_sent")
    if done is None or not done.get("emergency") or not done.get("request_id"):
        return redirect(url_for("help.emergency_confirm"))
    if _attach_voice_note(done["request_id"]):
        session["help_sent"] = {**done, "voice_sent": True}
    return redirect(url_for("help.emergency_sent"))


def _attach_voice_note(request_id: str) -> bool:
    """The recorded clip of this form, if any, kept and queued for the cloud (ADR 0128). A
    refusal is told plainly; the request itself is already sent."""
    upload = request.files.get("voice")
    if upload is None or not upload.filename:
        return False
    try:
        service("voice_notes").attach(request_id, upload.read(), upload.mimetype)
    except domain_errors() as exc:
        code = getattr(exc, "code", "")
        flash(_(VOICE_WORDS[code]) if code in VOICE_WORDS else error_message(exc), "error")
        return False
    flash(_("Your voice note was sent with the request."), "success")
    return True


def _simulate() -> bool:
    from edge.kiosk_ui.screens.common import controller

    return bool(controller().settings.simulate)


def _resident_or_none() -> Any:
    return resident_object() if resident() else None


def _back_to_form(form: dict[str, str]) -> Any:
    session["help_draft"] = form  # nothing typed is lost on a refusal
    return redirect(url_for("help.request_form"))
