"""What every screen needs: the services, the person at the screen, and plain-word errors."""
from __future__ import annotations

import math
from functools import wraps
from typing import Any, Callable, TypeVar
from urllib.parse import urlsplit

from flask import abort, current_app, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from edge.controller import Controller

LANGUAGES = ("zh_CN", "en")


def N_(message: str) -> str:
    """Marks words for translation where they are defined; `_()` translates them on screen."""
    return message
F = TypeVar("F", bound=Callable[..., Any])


def controller() -> Controller:
    return current_app.extensions["edge"]


def service(name: str) -> Any:
    """A domain service by its field name in `Services`, or a plain 503 page when that part
    is not built on this box."""
    found = getattr(controller().services, name)
    if found is None:
        abort(503)
    return found


def current_lang() -> str:
    lang = session.get("lang")
    return lang if lang in LANGUAGES else controller().settings.kiosk.default_language


def pick(bilingual: Any) -> str:
    """The screen's language out of the platform's {"zh": ..., "en": ...} text."""
    from edge.community import text

    return text(bilingual, current_lang())


def safe_next(default: str) -> str:
    """A same-site path to return to; anything else goes to `default`."""
    target = request.values.get("next", "")
    parts = urlsplit(target)
    if target.startswith("/") and not target.startswith("//") and not parts.netloc:
        return target
    return default


def resident() -> dict[str, str] | None:
    """The identified resident, as the fields of edge.community.Resident (masked only)."""
    return session.get("resident")


def resident_required(view: F) -> F:
    """Ask who is at the screen first; afterwards come back to this page (or, for a form, to
    the page the form was on: the person presses its button again, now identified)."""
    return _ask_who_first(view, carry_choice=False)


def resident_required_keeping_choice(view: F) -> F:
    """As resident_required, but a form's choice (a slot, a sign-up) is kept and completed
    as soon as the person is identified (screens/pending.py, ADR 0125)."""
    return _ask_who_first(view, carry_choice=True)


def _ask_who_first(view: F, *, carry_choice: bool) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if resident() is None:
            back = request.full_path.rstrip("?")
            if request.method != "GET":
                referrer = urlsplit(request.referrer or "")
                back = referrer.path + (f"?{referrer.query}" if referrer.query else "") or "/"
                if carry_choice:
                    from edge.kiosk_ui.screens.pending import remember_choice

                    remember_choice()
            return redirect(url_for("identify.choose", next=back))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def visit_assurance() -> str:
    """The visit's assurance level (ADR 0115): "high" after the platform's QR or an SMS code."""
    from edge.assurance import level

    who = resident()
    return level(who.get("assurance") if who else None).value


def may(act: str) -> bool:
    """Whether the person at the screen may do `act` (edge.assurance.NEEDS, the one table)."""
    from edge.assurance import allows

    return resident() is not None and allows(visit_assurance(), act)


def assurance_required(act: str) -> Callable[[F], F]:
    """Like resident_required, and then, when `act` needs more than a typed phone gives,
    ask for the one-time code by SMS first (or the QR code), then come back here."""
    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if resident() is None or may(act):
                return view(*args, **kwargs)
            return redirect(url_for("identify.otp", next=_back_here()))

        return resident_required(wrapper)  # type: ignore[return-value]

    return decorate


def _back_here() -> str:
    """This page, or for a form, the page the form was on."""
    if request.method == "GET":
        return request.full_path.rstrip("?")
    referrer = urlsplit(request.referrer or "")
    return referrer.path + (f"?{referrer.query}" if referrer.query else "") or "/"


def can_see_private(who: dict[str, Any] | None) -> bool:
    """May the person at the screen see their requests' words and staff's replies, and cancel?
    Only with high assurance (the platform's QR code or an SMS code, ADR 0115): a typed phone
    number (anyone may know it) shows statuses only."""
    from edge.assurance import allows, level

    return who is not None and allows(level(who.get("assurance")), "see_own_data")


def resident_object() -> Any:
    """The community module's Resident for the person identified in this session."""
    from edge.community import Resident

    return Resident(**session["resident"])


def domain_errors() -> tuple[type[Exception], ...]:
    """What the services raise for input or rules; anything else is a bug and goes to the log."""
    from edge.assurance import AssuranceTooLow
    from edge.community import CommunityError
    from edge.identity.otp import OtpError
    from edge.locker.errors import LockerError
    from edge.storage import StorageFull

    return (CommunityError, LockerError, StorageFull, AssuranceTooLow, OtpError)


# Plain-word messages by the domain's error codes; unknown codes fall back to the service's words.
def error_message(exc: Exception) -> str:
    from edge.storage import StorageFull

    if isinstance(exc, StorageFull):
        return _("The station cannot take new requests right now. Please ask staff.")
    code = getattr(exc, "code", "")
    if code == "cooling_down":  # courier codes and one-time codes; pickup codes say it themselves
        return cooldown_message(getattr(exc, "details", {}).get("seconds_left", 60))
    messages = _messages()
    if code == "token_refused":
        code = getattr(exc, "reason", code)
    if code in messages:
        return messages[code]
    return str(getattr(exc, "message", "") or exc) or _("Something went wrong. Please ask staff.")


def cooldown_message(seconds_left: int) -> str:
    minutes = max(1, math.ceil(seconds_left / 60))
    return ngettext("Too many wrong codes. Please try again in %(num)d minute.",
                    "Too many wrong codes. Please try again in %(num)d minutes.", minutes)


def _messages() -> dict[str, str]:
    return {
        "forged": _("This code was not made by the community platform. Please ask staff."),
        "expired": _("This code has expired. Please open a new one in the app."),
        "malformed": _("That code could not be read. Please try again."),
        "unknown_resident": _("We could not find you. Please ask staff to register you."),
        "bad_phone": _("A mobile number has 11 digits and starts with 1."),
        "no_platform_key": _("Deposits are not available at this station right now. Please ask staff."),
        "phone_required": _("Please type a phone number so staff can call you back."),
        "used": _("This code was already used."),
        "wrong_role": _("This code is not for this task."),
        "full": _("Sorry, no places are left."),
        "already_signed_up": _("You have already signed up for this activity."),
        "started": _("This activity has already started."),
        "not_signed_up": _("You are not signed up for this activity."),
        "signed_in": _("You have already signed in, so the sign-up cannot be cancelled."),
        "signin_not_open": _("Sign-in is not open yet. It opens shortly before the start."),
        "signin_closed": _("Sign-in for this activity has closed."),
        "slot_taken": _("Sorry, this time was just taken. Please pick another."),
        "slot_past": _("This time has already passed. Please pick another."),
        "already_booked": _("You already asked for this time."),
        "venue_closed": _("The room is closed at that time."),
        "too_late": _("It is too late to cancel this booking here. Please call the office."),
        "not_active": _("This booking is no longer active."),
        "description_required": _("Please tell us briefly what you need."),
        "bad_rating": _("Please choose a rating from 1 to 5."),
        "already_rated": _("You have already rated this. Thank you!"),
        "not_finished": _("This can be rated once it is finished."),
        "comment_too_long": _("The comment is too long. Please shorten it."),
        "unknown_service": _("Please choose a service."),
        # the locker's codes
        "unknown_courier": _("That courier code is not known at this station."),
        "no_free_compartment": _("No free door of this size. Please try another size."),
        "door_not_opened": _("The door did not open. Please ask staff."),
        "compartment_out_of_service": _("That door is out of service. Please ask staff."),
        "board_unreachable": _("The locker is not answering. Please ask staff."),
        "wrong_state": _("This cannot be done now. Please start again."),
        "not_found": _("We could not find that. Please start again."),
        "bad_waybill": _("Please type the waybill number (up to 64 characters)."),
        "bad_reason": _("Please choose a reason."),
        "camera_unhealthy": _("Sending is closed while the locker camera is not working. Please ask staff."),
        "bad_send_code": _("Please type the send code from the courier company's app (letters and digits)."),
        "unknown_company": _("Please choose a courier company."),
        "waybill_in_locker": _("This waybill already has a parcel in this locker. Please check the label."),
        "bad_size": _("Please choose a size."),
        "bad_code_format": _("The pickup code has 8 digits. Please check the message you received."),
        # identity assurance (ADR 0115)
        "assurance_too_low": _("For this, please confirm it is you with the code we text to your phone."),
        "wrong_otp": _("That code is not right. Please check the text message."),
        "otp_expired": _("That code has expired. Please ask for a new one."),
        "no_otp": _("Please ask for a code first."),
        "otp_too_soon": _("A code was just sent. Please wait a minute before asking again."),
    }


def site_zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(controller().settings.site.timezone)
