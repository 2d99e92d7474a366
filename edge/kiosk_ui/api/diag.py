"""Technician diagnostics over the local HTTP API: what `edge diag` calls when the running
controller owns the lock-board bus (see edge/locker/buslock.py)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request

from edge.kiosk_ui.api.locker import error, guard_locker_blueprint
from edge.locker.diagnostics import LockerDiagnostics
from edge.locker.errors import InvalidInput

bp = Blueprint("diag_api", __name__, url_prefix="/api/diag")


def diagnostics() -> LockerDiagnostics:
    return current_app.extensions["edge"].services.locker_diagnostics


guard_locker_blueprint(bp, "locker_diagnostics")


@bp.before_request
def _technicians_only() -> Any:
    """Every diagnostic, reading ones included, is for the controller and technicians."""
    from edge.kiosk_ui.guard import bearer_is_api_token

    if bearer_is_api_token():
        return None
    return error("unauthorised", "diagnostics need the local API credential (edge diag sends it)", 401)


def _technician_request() -> tuple[int, str]:
    body = request.get_json(silent=True)
    number = body.get("compartment") if isinstance(body, dict) else None
    if not isinstance(number, int) or isinstance(number, bool):
        raise InvalidInput("invalid_input", "compartment must be a number")
    who = body.get("who") if isinstance(body.get("who"), str) and body["who"].strip() else "technician"
    return number, who.strip()[:64]


@bp.get("/doors")
def doors() -> Any:
    return jsonify(diagnostics().doors())


@bp.post("/open")
def open_door() -> Any:
    return jsonify(diagnostics().open(*_technician_request()))


@bp.post("/clear-fault")
def clear_fault() -> Any:
    return jsonify(diagnostics().clear_fault(*_technician_request()))


@bp.post("/maintenance")
def maintenance() -> Any:
    number, who = _technician_request()
    body = request.get_json(silent=True)
    on = body.get("on")
    reason = body.get("reason", "")
    if not isinstance(on, bool) or not isinstance(reason, str):
        raise InvalidInput("invalid_input", "on must be true or false and reason a text")
    return jsonify(diagnostics().maintenance(number, on, reason, who))


@bp.get("/bus")
def bus() -> Any:
    return jsonify(diagnostics().bus())


@bp.get("/selftest")
def selftest() -> Any:
    from edge.station_checks import station_selftest

    return jsonify(checks=station_selftest(current_app.extensions["edge"]))


@bp.get("/station")
def station() -> Any:
    """What `edge diag` needs to know of the running station (simulated cameras, time zone)."""
    controller = current_app.extensions["edge"]
    return jsonify(simulate=controller.simulation is not None, timezone=controller.settings.site.timezone)


@bp.get("/events")
def events() -> Any:
    limit = request.args.get("limit", "20")
    if not limit.isdigit():
        return error("invalid_input", "limit must be a whole number")
    return jsonify(diagnostics().events(int(limit)))


def register(app: Flask) -> None:
    app.register_blueprint(bp)


def _openapi() -> dict[str, Any]:
    from edge.kiosk_ui.api.openapi import INTEGER, STRING, obj, operation

    technician = obj(["compartment"], compartment=INTEGER, who=STRING)
    return {"paths": {
        "/api/diag/doors": {"get": operation(
            "Every compartment read from its board now, with parcel state and fault",
            obj(boards={"type": "array"}, compartments={"type": "array"}), errors=(503,), tag="diag")},
        "/api/diag/open": {"post": operation(
            "Technician opens one door (audited); opened is true only when status confirms",
            obj(["compartment", "opened"], compartment=INTEGER, opened={"type": "boolean"},
                attempts=INTEGER, latch=STRING, error={"type": "string", "nullable": True}),
            body=technician, errors=(400, 404, 503), tag="diag")},
        "/api/diag/clear-fault": {"post": operation(
            "Technician puts a repaired compartment back in service", body=technician,
            errors=(400, 404, 503), tag="diag")},
        "/api/diag/maintenance": {"post": operation(
            "Technician takes a compartment out of service (on) or puts it back (off); audited",
            obj(["compartment", "maintenance"], compartment=INTEGER, maintenance={"type": "boolean"},
                reason={"type": "string", "nullable": True}, parcel_inside={"type": "boolean"}),
            body=obj(["compartment", "on"], compartment=INTEGER, on={"type": "boolean"}, reason=STRING,
                     who=STRING),
            errors=(400, 404, 503), tag="diag")},
        "/api/diag/bus": {"get": operation(
            "Bus scan: configured, answering, missing and unexpected boards", errors=(503,), tag="diag")},
        "/api/diag/selftest": {"get": operation(
            "Database, key files, bus, boards, disk, cloud link, last PUBACK, outbox backlog, clock, "
            "cameras (ok null: unknown)", obj(checks={"type": "array"}), errors=(503,), tag="diag")},
        "/api/diag/station": {"get": operation(
            "Whether the running station is simulated, and its time zone",
            obj(simulate={"type": "boolean"}, timezone=STRING), errors=(503,), tag="diag")},
        "/api/diag/events": {"get": operation(
            "Recent audit and outbox rows (pickup codes redacted)",
            obj(audit={"type": "array"}, outbox={"type": "array"}), errors=(400, 503), tag="diag")},
    }}


OPENAPI = _openapi()
