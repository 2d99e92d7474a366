"""The staff console's Flask app: thin views over fleet/console/followup.py.

Every route but the login page needs a signed-in staff member (checked before each
request); every object is checked against the staff member's stations in followup.py.
CSRF tokens on every form (flask-wtf)."""
from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

import psycopg
from flask import Flask, abort, flash, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFProtect

from fleet import db as fleet_db
from fleet.console import catalogue as station_catalogue
from fleet.console import followup
from fleet.console.accounts import authenticate, staff_by_id
from fleet.settings import FleetSettings

# favicon: browsers ask for it on their own after the log-in page; sent to log in, that
# request would clear the session and its CSRF token, and the log-in form would be refused.
PUBLIC_ENDPOINTS = {"login", "static", "favicon"}


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
    CSRFProtect(app)

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
            session.clear()
            return redirect(url_for("login"))
        return None

    @app.context_processor
    def _staff() -> dict:
        return {"staff": g.get("staff")}

    @app.route("/login", methods=["GET", "POST"])
    def login() -> object:
        if request.method == "POST":
            staff = authenticate(conn(), request.form.get("username", "")[:64],
                                 request.form.get("password", "")[:256], now())
            if staff is not None:
                session.clear()
                session["staff_id"] = staff.id
                session.permanent = True
                return redirect(url_for("stations"))
            flash("Wrong user name or password, or the account is locked for a while.")
        return render_template("login.html")

    @app.post("/logout")
    def logout() -> object:
        session.clear()
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
            flash(str(exc))
        else:
            on_command()
            flash(f"Booking {booking_id}: {decision}.")
        return redirect(url_for("bookings"))

    @app.get("/requests")
    def requests_() -> str:
        followup.escalate(conn(), now())
        return render_template("requests.html", requests=followup.help_requests(conn(), g.staff, now()))

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
            flash(str(exc))
        else:
            on_command()
            flash(f"Request {request_id}: {status}.")
        return redirect(url_for("requests_"))

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
                    flash(str(exc))
                else:
                    on_command()
                    flash(f"Catalogue {version} sent to {site_id}/{device_id}.")
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
                flash(str(exc))
            else:
                on_command()
                flash(f"Notice sent to {updated} station(s)."
                      + (f" No catalogue here yet for: {', '.join(skipped)}." if skipped else ""))
                return redirect(url_for("notices"))
        return render_template("notices.html")

    return app
