"""The kiosk's touch screens: server-rendered pages, forms that POST then redirect.

`register_screens(app)` installs sessions, languages, CSRF checks and every screen blueprint.
CSRF is checked on the screens' forms only: the JSON API (edge/kiosk_ui/api) has its own rules.
"""
from __future__ import annotations

import secrets
from typing import Any

from flask import Flask, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import Babel
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from werkzeug.exceptions import HTTPException

from edge.kiosk_ui.screens import (
    activities,
    community,
    courier,
    feedback,
    help,
    identify,
    ime,
    iris,
    kiosk,
    live,
    mine,
    notices,
    pickup,
    sending,
    services,
    venues,
)
from edge.kiosk_ui.screens.common import N_, controller, current_lang, pick, resident
from edge.kiosk_ui.screens import pending
from edge.kiosk_ui.screens.formatting import install_filters
from edge.kiosk_ui.screens.visits import KioskSessionStore

BLUEPRINTS = (kiosk, identify, pickup, iris, courier, services, notices, venues, activities, help,
              feedback, live, ime, mine, community, sending)
# Machine endpoints with no form behind them (the barcode scanner posts its reading).
CSRF_EXEMPT_ENDPOINTS = frozenset({"live.scanner_reading"})
# After this long without a touch the screen goes black; tests may shorten it.
SCREENSAVER_AFTER_S = 300

csrf = CSRFProtect()


def register_screens(app: Flask) -> None:
    settings = app.extensions["edge"].settings
    kiosk_settings = settings.kiosk
    if not app.config.get("SECRET_KEY"):  # per process: a restart ends every visit anyway
        app.config["SECRET_KEY"] = secrets.token_bytes(32)
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.config["WTF_CSRF_TIME_LIMIT"] = None  # the session's own idle expiry bounds the token
    app.config.setdefault("KIOSK_SCREENSAVER_AFTER_S", SCREENSAVER_AFTER_S)
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 600  # CSS/JS/icons: no re-fetch on every tap
    # Slack over the page's own timer, so the page (not the server) is what normally ends a visit.
    lifetime = kiosk_settings.idle_timeout_s + kiosk_settings.idle_warning_s + 15
    app.session_interface = KioskSessionStore(app.extensions["edge"].clock, lifetime)
    Babel(app, locale_selector=current_lang, default_domain="messages")
    csrf.init_app(app)
    app.jinja_env.globals["csrf_token"] = csrf_token_once
    for module in BLUEPRINTS:
        app.register_blueprint(module.bp)
    app.before_request(_check_csrf)
    app.before_request(pending.forget_when_walking_away)
    app.context_processor(_page_context)
    install_filters(app)
    app.after_request(_no_stale_pages)
    app.register_error_handler(CSRFError, _csrf_failed)
    app.register_error_handler(HTTPException, _error_page)


def csrf_token_once() -> str:
    """The page's CSRF token, signed once per request: a screen has five to ten forms, and
    flask-wtf signs the token anew (an HMAC) at every call. Any signed copy is valid."""
    token = g.get("kiosk_csrf_token")
    if token is None:
        token = g.kiosk_csrf_token = generate_csrf()
    return token


SCREEN_BLUEPRINTS = frozenset(module.bp.name for module in BLUEPRINTS)


def _check_csrf() -> None:
    if (request.method == "POST" and request.blueprint in SCREEN_BLUEPRINTS
            and request.endpoint not in CSRF_EXEMPT_ENDPOINTS):
        csrf.protect()


# Session keys that are the kiosk's own, not something a person entered.
_NOT_A_VISIT = frozenset({"csrf_token", "_flashes"})


def _page_context() -> dict[str, Any]:
    settings = controller().settings
    visit = bool(set(session) - _NOT_A_VISIT) or request.endpoint != "kiosk.home"
    return {
        "lang": current_lang(),
        "html_lang": "zh-CN" if current_lang() == "zh_CN" else "en",
        "large_text": bool(session.get("large_text")),
        "station": _station(settings),
        "resident": resident(),
        "has_visit": visit,
        "idle": {
            "timeout_s": settings.kiosk.idle_timeout_s,
            "warning_s": settings.kiosk.idle_warning_s,
            "screensaver_s": current_app.config["KIOSK_SCREENSAVER_AFTER_S"],
        },
    }


def _station(settings: Any) -> dict[str, str]:
    """The station's name and hours: the platform's catalogue wins over local settings."""
    site = settings.site
    name = {"zh": site.station_name, "en": site.station_name_en}
    hours = site.opening_hours
    catalogue = controller().services.catalogue
    synced = catalogue.station() if catalogue is not None else None
    if synced is not None:
        name = {"zh": synced.name.zh or name["zh"], "en": synced.name.en or name["en"]}
        hours = synced.opening_hours or hours
    return {"name": pick(name), "opening_hours": hours}


def _no_stale_pages(response: Any) -> Any:
    # A page must never come back from the cache showing an old door state or someone's data.
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    return response


def _csrf_failed(_error: CSRFError) -> Any:
    flash(_("The page was open too long. Please try again."), "error")
    return redirect(url_for("kiosk.home"))


ERROR_WORDS = {404: N_("We could not find that page."),
               503: N_("This service is not available at this station right now."),
               500: N_("Something went wrong. Please ask staff.")}


def _error_page(error: HTTPException) -> Any:
    """Screens answer errors with a page in plain words and a way home; the API keeps its own."""
    if request.path.startswith("/api/"):
        return error
    code = error.code or 500
    words = ERROR_WORDS.get(code, ERROR_WORDS[500] if code >= 500 else ERROR_WORDS[404])
    return render_template("error.html", words=words), code
