"""The staff console's Flask app: thin views over followup.py, catalogue.py, mailbox.py and
lost_found.py.

Every route but the login page (and the language switch) needs a signed-in staff member
(checked before each request); every object is checked against the staff member's stations
in those modules. CSRF tokens on every form (flask-wtf). Pages are Chinese first
(flask-babel, English message ids, translations/zh_Hans_CN; ADR 0163): Chinese unless the
staff member switched to English."""
from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

import psycopg
from flask import Flask, abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import Babel
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFProtect

from fleet import db as fleet_db
from fleet.console import catalogue as station_catalogue
from fleet.console import followup, lost_found, mailbox, text
from fleet.console.accounts import authenticate, staff_by_id
from fleet.settings import FleetSettings

# favicon: browsers ask for it on their own after the log-in page; it needs no log-in.
PUBLIC_ENDPOINTS = {"login", "static", "set_language", "favicon"}
# The console's languages: Babel's name for each (zh_CN is found as zh_Hans_CN) and the
# <html lang>. Chinese is the default; tests of English wording set CONSOLE_DEFAULT_LANGUAGE.
LANGUAGES = {"zh": ("zh_CN", "zh-CN"), "en": ("en", "en")}
DEFAULT_LANGUAGE = "zh"
# Where a request's update form may send the staff member back to (never a URL from the form).
BACK_TO = {"requests": "requests_", "mailbox": "mailbox_", "lost_found": "lost_and_found"}
# Categories with their own pages, left out of the help requests' list.
OWN_PAGES = (mailbox.LETTER, lost_found.FOUND_ITEM)


def create_app(settings: FleetSettings, *, now: Callable[[], datetime],
               on_command: Callable[[], None] = lambda: None) -> Flask:
    """`now` is the clock (tests pass a fake one); `on_command` wakes the command sender."""
    app = Flask(__name__)
    secret = settings.console.secret_key
    app.config.update(
        SECRET_KEY=secret.get_secret_value() if secret else secrets.token_hex(32),
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
    )
    app.config.setdefault("CONSOLE_DEFAULT_LANGUAGE", DEFAULT_LANGUAGE)
    CSRFProtect(app)

    def language() -> str:
        chosen = session.get("lang")
        return chosen if chosen in LANGUAGES else app.config["CONSOLE_DEFAULT_LANGUAGE"]

    Babel(app, locale_selector=lambda: LANGUAGES[language()][0])

    def named(names: dict[str, str]) -> Callable[[str], str]:
        """A filter: the code's words, translated once per request (lists repeat a few codes)."""
        def name(code: str) -> str:
            cache = g.setdefault("console_names", {})
            key = (id(names), code)
            if key not in cache:
                cache[key] = _(names[code]) if code in names else code
            return cache[key]
        return name

    app.jinja_env.filters.update(
        status_name=named(text.STATUS_NAMES), category_name=named(text.CATEGORY_NAMES),
        level_name=named(text.LEVEL_NAMES), masked=text.masked_phone, when=text.local_time)

    def refusal(exc: followup.Refused) -> str:
        """A Refused in the staff member's language, its status codes as words."""
        params = {k: _(text.STATUS_NAMES[v]) if isinstance(v, str) and v in text.STATUS_NAMES else v
                  for k, v in exc.params.items()}
        return _(exc.message, **params)

    def conn() -> psycopg.Connection:
        if "conn" not in g:
            g.conn = fleet_db.connect(settings.database_url)
            g.conn.autocommit = True  # followup opens its own transactions
        return g.conn

    @app.teardown_appcontext
    def _close(_exc: BaseException | None) -> None:
        connection = g.pop("conn", None)
        if connection is not None:
            connection.close()

    @app.before_request
    def _signed_in() -> object:
        if request.endpoint in PUBLIC_ENDPOINTS:
            return None
        staff_id = session.get("staff_id")
        g.staff = staff_by_id(conn(), staff_id) if staff_id is not None else None
        if g.staff is None:
            # Only a stale account ends the session: a browser's own request before log-in
            # (favicon.ico) must not throw away the login form's CSRF token.
            if staff_id is not None:
                session.clear()
            return redirect(url_for("login"))
        return None

    @app.context_processor
    def _staff() -> dict:
        return {"staff": g.get("staff"), "lang": language(), "html_lang": LANGUAGES[language()][1],
                "languages": {"zh": "中文", "en": "English"}}

    @app.get("/language/<code>")
    def set_language(code: str) -> object:
        if code not in LANGUAGES:
            abort(404)
        session["lang"] = code
        return redirect(url_for("stations") if session.get("staff_id") is not None else url_for("login"))

    @app.route("/login", methods=["GET", "POST"])
    def login() -> object:
        if request.method == "POST":
            staff = authenticate(conn(), request.form.get("username", "")[:64],
                                 request.form.get("password", "")[:256], now())
            if staff is not None:
                lang = session.get("lang")
                session.clear()
                if lang in LANGUAGES:
                    session["lang"] = lang
                session["staff_id"] = staff.id
                session.permanent = True
                return redirect(url_for("stations"))
            flash(_("Wrong user name or password, or the account is locked for a while."))
        return render_template("login.html")

    @app.post("/logout")
    def logout() -> object:
        lang = session.get("lang")
        session.clear()
        if lang in LANGUAGES:
            session["lang"] = lang
        return redirect(url_for("login"))

    @app.get("/favicon.ico")
    def favicon() -> object:
        return "", 204

    @app.get("/")
    def stations() -> str:
        return render_template("stations.html", stations=followup.stations(conn(), g.staff))

    @app.get("/bookings")
    def bookings() -> str:
        return render_template("bookings.html", bookings=followup.pending_bookings(conn(), g.staff))

    @app.post("/bookings/<booking_id>/decide")
    def decide(booking_id: str) -> object:
        decision = request.form.get("decision")
        if decision not in ("approved", "rejected"):
            abort(400)
        try:
            followup.decide_booking(conn(), g.staff, booking_id, decision == "approved",
                                    request.form.get("reason"), now())
        except followup.NotFound:
            abort(404)
        except followup.Refused as exc:
            flash(refusal(exc))
        else:
            on_command()
            flash(_("Booking %(booking)s: %(decision)s.", booking=booking_id,
                    decision=_(text.STATUS_NAMES[decision])))
        return redirect(url_for("bookings"))

    @app.get("/requests")
    def requests_() -> str:
        followup.escalate(conn(), now())
        return render_template("requests.html",
                               requests=followup.help_requests(conn(), g.staff, now(), exclude=OWN_PAGES))

    @app.get("/requests/<site_id>/<device_id>/<request_id>")
    def request_detail(site_id: str, device_id: str, request_id: str) -> str:
        try:
            item = followup.help_request(conn(), g.staff, site_id, device_id, request_id, now())
        except followup.NotFound:
            abort(404)
        category = (item["data"] or {}).get("category")
        back = "mailbox" if category == mailbox.LETTER else "lost_found" if category == lost_found.FOUND_ITEM \
            else "requests"
        return render_template("request_detail.html", r=item, back=back)

    @app.post("/requests/<site_id>/<device_id>/<request_id>")
    def update_request(site_id: str, device_id: str, request_id: str) -> object:
        status = request.form.get("status", "")
        if status not in followup.NEXT_STATUSES:
            abort(400)
        try:
            followup.update_request(conn(), g.staff, site_id, device_id, request_id, status,
                                    request.form.get("reply"), now())
        except followup.NotFound:
            abort(404)
        except followup.Refused as exc:
            flash(refusal(exc))
        else:
            on_command()
            flash(_("%(request)s: %(status)s, sent to the station.", request=request_id,
                    status=_(text.STATUS_NAMES[status])))
        if request.form.get("back") == "detail":
            return redirect(url_for("request_detail", site_id=site_id, device_id=device_id, request_id=request_id))
        return redirect(url_for(BACK_TO.get(request.form.get("back", ""), "requests_")))

    @app.get("/mailbox")
    def mailbox_() -> str:
        station = _station_arg(request.args.get("station"))
        try:
            letters = mailbox.letters(conn(), g.staff, now(), station)
        except followup.NotFound:
            abort(404)
        return render_template("mailbox.html", letters=letters, station=station,
                               stations=followup.stations(conn(), g.staff))

    @app.get("/lost-found")
    def lost_and_found() -> str:
        # No escalate() here (unlike /requests): the console's minute loop keeps it current and
        # an UPDATE over all requests on every view of these pages costs more than it shows.
        draft = {}
        source = request.args.get("report", "")
        if source.count("/") == 2:  # site/device/request_id: publish what a resident reported
            site_id, device_id, request_id = source.split("/")
            try:
                report = followup.help_request(conn(), g.staff, site_id, device_id, request_id, now())
            except followup.NotFound:
                abort(404)
            data = report["data"] or {}
            draft = {"station": f"{site_id}/{device_id}", "report": request_id,
                     "item": (data.get("description") or "")[:lost_found.MAX_ITEM],
                     "where": data.get("address") or ""}
        return render_template("lost_found.html", draft=draft,
                               reports=lost_found.reports(conn(), g.staff, now()),
                               published=lost_found.published_reports(conn(), g.staff),
                               on_kiosks=lost_found.items(conn(), g.staff, returned=False),
                               returned=lost_found.items(conn(), g.staff, returned=True, limit=50),
                               stations=followup.stations(conn(), g.staff))

    @app.post("/lost-found/items")
    def publish_found_item() -> object:
        station = _station_arg(request.form.get("station"))
        if station is None:
            abort(400)
        try:
            found = lost_found.publish(
                conn(), g.staff, *station, item=request.form.get("item", ""),
                found_where=request.form.get("where", ""), claim_at=request.form.get("claim_at", ""),
                contact=request.form.get("contact", ""), report_request_id=request.form.get("report"), now=now())
        except followup.NotFound:
            abort(404)
        except followup.Refused as exc:
            flash(refusal(exc))
            return redirect(url_for("lost_and_found"))
        on_command()
        flash(_("\"%(item)s\" is published to %(station)s.", item=found.item, station="/".join(station)))
        return redirect(url_for("lost_and_found"))

    @app.post("/lost-found/items/<item_id>/returned")
    def found_item_returned(item_id: str) -> object:
        try:
            synced = lost_found.mark_returned(conn(), g.staff, item_id, request.form.get("note"), now())
        except followup.NotFound:
            abort(404)
        except followup.Refused as exc:
            flash(refusal(exc))
        else:
            if synced:
                on_command()
            flash(_("Marked returned; it leaves the kiosk's lost and found list."))
        return redirect(url_for("lost_and_found"))

    @app.route("/stations/<site_id>/<device_id>/catalogue", methods=["GET", "POST"])
    def catalogue(site_id: str, device_id: str) -> object:
        text = None
        try:
            if request.method == "POST":
                text = request.form.get("catalogue", "")
                try:
                    version = station_catalogue.save_catalogue(
                        conn(), g.staff, site_id, device_id, station_catalogue.parse_catalogue(text), now())
                except followup.Refused as exc:
                    flash(refusal(exc))
                else:
                    on_command()
                    flash(_("Catalogue %(version)s sent to %(station)s.", version=version,
                            station=site_id + "/" + device_id))
                    return redirect(url_for("catalogue", site_id=site_id, device_id=device_id))
            current = station_catalogue.catalogue_of(conn(), g.staff, site_id, device_id)
        except followup.NotFound:
            abort(404)
        if text is None:
            text = json.dumps(current, ensure_ascii=False, indent=1) if current else "{}"
        return render_template("catalogue.html", site_id=site_id, device_id=device_id, text=text)

    @app.route("/notices", methods=["GET", "POST"])
    def notices() -> object:
        if request.method == "POST":
            try:
                updated, skipped = station_catalogue.publish_notice(
                    conn(), g.staff, request.form.get("title", ""), request.form.get("body", ""), now())
            except followup.Refused as exc:
                flash(refusal(exc))
            else:
                on_command()
                flash(_("Notice sent to %(count)d station(s).", count=updated))
                if skipped:
                    flash(_("No catalogue here yet for: %(stations)s.", stations="、".join(skipped)))
                return redirect(url_for("notices"))
        return render_template("notices.html")

    return app


def _station_arg(value: str | None) -> tuple[str, str] | None:
    """"site/device" from a form or query, or None."""
    if not value or value.count("/") != 1:
        return None
    site_id, device_id = value.split("/")
    return (site_id, device_id) if site_id and device_id else None
