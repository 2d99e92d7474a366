"""JSON API of the parcel locker (for tests, the bench and integrations; the kiosk screens
call the LockerService in-process). Thin: parse, call the service, answer JSON.

Couriers log in with their courier code and carry the session token as
`Authorization: Bearer <token>` on deposit and return calls. Error answers, the sessions
and the request helpers are shared with diag.py in edge/kiosk_ui/api/common.py.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from edge.kiosk_ui.api.common import (
    COURIER_SESSION_S,
    CourierSessions,
    courier_required,
    error,
    guard_locker_blueprint,
    json_body,
    kiosk_id,
    locker_error,
    service,
)
from edge.locker.errors import InvalidInput, LockerError

if TYPE_CHECKING:
    from edge.controller import Controller

bp = Blueprint("locker_api", __name__, url_prefix="/api/locker")
sim_bp = Blueprint("sim_api", __name__, url_prefix="/api/sim/lockboard")

guard_locker_blueprint(bp, "locker")
# Calls that open doors or hand out a courier session: only holders of the local API
# credential (couriers' later calls carry the session that login gave them).
CREDENTIAL_ENDPOINTS = frozenset({"courier_login", "pickup_with_code", "pickup_with_token"})


@bp.before_request
def _credential_for_door_calls() -> Response | None:
    from edge.kiosk_ui.guard import require_api_token

    if request.endpoint and request.endpoint.split(".")[-1] in CREDENTIAL_ENDPOINTS:
        return require_api_token()
    return None


@sim_bp.before_request
def _credential_for_simulator() -> Response | None:
    from edge.kiosk_ui.guard import require_api_token

    return require_api_token()


@bp.post("/courier/login")
def courier_login() -> Any:
    courier = service().courier_log_in(json_body("code")["code"], kiosk_id())
    token = current_app.extensions["courier_sessions"].open(courier.id)
    return jsonify(token=token, courier_id=courier.id, company=courier.company_name,
                   expires_in=COURIER_SESSION_S)


def _own_deposit(deposit_id: str) -> None:
    """Couriers see only their own deposits (another courier's id reads as not found)."""
    service().deposit_status(deposit_id, courier_id=g.courier_id)


@bp.post("/deposits")
@courier_required
def start_deposit() -> Any:
    body = json_body("waybill", "phone", "size")
    view = service().start_deposit(g.courier_id, body["waybill"], body["phone"], body["size"])
    return jsonify(view.as_dict()), 201


@bp.get("/deposits/<deposit_id>")
@courier_required
def deposit_status(deposit_id: str) -> Any:
    _own_deposit(deposit_id)
    return jsonify(service().deposit_status(deposit_id).as_dict())


@bp.post("/deposits/<deposit_id>/cancel")
@courier_required
def cancel_deposit(deposit_id: str) -> Any:
    _own_deposit(deposit_id)
    return jsonify(service().cancel_deposit(deposit_id).as_dict())


@bp.post("/deposits/<deposit_id>/reopen")
@courier_required
def reopen_deposit(deposit_id: str) -> Any:
    _own_deposit(deposit_id)
    return jsonify(service().reopen_deposit(deposit_id).as_dict())


@bp.post("/deposits/<deposit_id>/door-not-opened")
@courier_required
def door_not_opened(deposit_id: str) -> Any:
    _own_deposit(deposit_id)
    return jsonify(service().report_door_not_opened(deposit_id).as_dict())


@bp.post("/pickup")
def pickup_with_code() -> Any:
    return jsonify(service().pickup_with_code(json_body("code")["code"], kiosk_id()).as_dict())


@bp.post("/pickup/token")
def pickup_with_token() -> Any:
    return jsonify(service().pickup_with_token(json_body("token")["token"], kiosk_id()).as_dict())


@bp.get("/pickups/<pickup_id>")
def pickup_status(pickup_id: str) -> Any:
    return jsonify(service().pickup_status(pickup_id).as_dict())


@bp.post("/pickups/<pickup_id>/refuse")
def refuse_parcel(pickup_id: str) -> Any:
    """The resident refuses the parcel at its open door (or just after taking it out)."""
    return jsonify(service().refuse_parcel(pickup_id, json_body("reason")["reason"]).as_dict())


@bp.get("/returns")
@courier_required
def returns() -> Any:
    return jsonify(parcels=service().returns_for(g.courier_id))


@bp.post("/pickups/<pickup_id>/next")
def open_next_door(pickup_id: str) -> Any:
    """One code, every parcel: the same resident's next door, after this one closed."""
    return jsonify(service().open_next_door(pickup_id).as_dict())


@bp.post("/sends")
def start_send() -> Any:
    """A resident sends a parcel with a send code from the courier company's app (寄件)."""
    body = json_body("company", "size", "send_code")
    view = service().start_send(body["company"], body["size"], send_code=body["send_code"])
    return jsonify(view.as_dict()), 201


@bp.get("/sends/<send_id>")
def send_status(send_id: str) -> Any:
    return jsonify(service().send_status(send_id).as_dict())


@bp.get("/outgoing")
@courier_required
def outgoing() -> Any:
    return jsonify(parcels=[v.as_dict() for v in service().sends_waiting_for(g.courier_id)])


@bp.post("/outgoing/<send_id>/collect")
@courier_required
def collect_outgoing(send_id: str) -> Any:
    return jsonify(service().collect_send(g.courier_id, send_id).as_dict())


@bp.get("/compartments")
def compartments() -> Any:
    return jsonify(compartments=service().snapshot())


@bp.get("/overdue")
@courier_required
def overdue() -> Any:
    """Only the parcels of the logged-in courier's company."""
    return jsonify(parcels=service().overdue_parcels(service().courier_company(g.courier_id)))


@bp.post("/returns")
@courier_required
def take_back() -> Any:
    body = json_body("parcel_id")
    return jsonify(service().return_parcel(g.courier_id, body["parcel_id"]).as_dict())


# --- simulator controls, registered only when the controller runs its own simulator -------

def _simulator() -> Any:
    return current_app.extensions["edge"].simulation.lockboard


def _where(body: dict[str, Any]) -> tuple[int, int]:
    number = body.get("compartment")
    if not isinstance(number, int) or isinstance(number, bool):
        raise InvalidInput("invalid_input", "compartment must be a number")
    spec = service().compartment_location(number)
    return spec.board, spec.lock


@sim_bp.errorhandler(LockerError)
def _on_sim_error(exc: LockerError) -> Response:
    return locker_error(exc)


@sim_bp.errorhandler(ValueError)
def _on_sim_value_error(exc: ValueError) -> Response:
    return error("invalid_input", str(exc))


@sim_bp.get("/state")
def sim_state() -> Any:
    return jsonify(boards=_simulator().describe())


@sim_bp.post("/door")
def sim_door() -> Any:
    body = request.get_json(silent=True) or {}
    board, lock = _where(body)
    action = body.get("action")
    if action not in ("close", "open"):
        raise InvalidInput("invalid_input", "action must be close or open")
    (_simulator().close_door if action == "close" else _simulator().open_door)(board, lock)
    return jsonify(ok=True)


@sim_bp.post("/item")
def sim_item() -> Any:
    body = request.get_json(silent=True) or {}
    board, lock = _where(body)
    _simulator().set_item(board, lock, bool(body.get("present", True)))
    return jsonify(ok=True)


@sim_bp.post("/jam")
def sim_jam() -> Any:
    body = request.get_json(silent=True) or {}
    board, lock = _where(body)
    _simulator().jam(board, lock, bool(body.get("jammed", True)))
    return jsonify(ok=True)


@sim_bp.post("/offline")
def sim_offline() -> Any:
    body = request.get_json(silent=True) or {}
    board = body.get("board")
    if not isinstance(board, int) or isinstance(board, bool):
        raise InvalidInput("invalid_input", "board must be a number")
    _simulator().set_offline(board, bool(body.get("offline", True)))
    return jsonify(ok=True)


def register(app: Flask, controller: "Controller") -> None:
    app.extensions["courier_sessions"] = CourierSessions()
    app.register_blueprint(bp)
    if controller.simulation is not None and controller.simulation.lockboard is not None:
        app.register_blueprint(sim_bp)


def _openapi() -> dict[str, Any]:
    from edge.kiosk_ui.api.openapi import BOOLEAN, INTEGER, STRING, obj, operation, ref

    nullable_str = {"type": "string", "nullable": True}
    deposit, pickup, send = ref("Deposit"), ref("Pickup"), ref("Send")
    comp = {"type": "object", "properties": {"compartment": INTEGER}, "required": ["compartment"]}
    return {
        "schemas": {
            "Send": obj(["send_id", "company", "compartment", "size", "state"], send_id=STRING, company=STRING,
                        compartment=INTEGER, size={"enum": ["S", "M", "L"]},
                        state={"enum": ["opening", "door_open", "deposited", "collect_open", "collected",
                                        "cancelled", "failed"]},
                        message=STRING, not_opened={"type": "array", "items": INTEGER}),
            "Deposit": obj(["deposit_id", "compartment", "size", "state", "message"],
                           deposit_id=STRING, compartment=INTEGER, size={"enum": ["S", "M", "L"]},
                           state={"enum": ["opening", "door_open", "empty_closed", "deposited",
                                           "cancelled", "failed"]},
                           message=STRING, parcel_id=nullable_str),
            "Pickup": obj(["pickup_id", "parcel_id", "compartment", "purpose", "state"],
                          pickup_id=STRING, parcel_id=STRING, compartment=INTEGER,
                          purpose={"enum": ["pickup", "return"]},
                          state={"enum": ["opening", "door_open", "not_opened", "refusing", "collected",
                                            "refused", "returned"]},
                          message=STRING, next_doors={"type": "array", "items": INTEGER}),
            "Compartment": obj(["number", "board", "lock", "size", "latch", "state"],
                               number=INTEGER, board=INTEGER, lock=INTEGER, size=STRING,
                               latch={"enum": ["open", "closed", "unknown"]},
                               item={"type": "boolean", "nullable": True},
                               state={"enum": ["free", "occupied", "deposit", "pickup", "return",
                                               "fault", "disabled", "unknown", "maintenance", "refused",
                                               "send"]},
                               fault=nullable_str, maintenance=nullable_str, parcel={"type": "object", "nullable": True},
                               deposit_id=nullable_str),
        },
        "paths": {
            "/api/locker/courier/login": {"post": operation(
                "Courier logs in with a courier code", obj(token=STRING, courier_id=STRING, company=STRING,
                                                           expires_in=INTEGER),
                body=obj(code=STRING), errors=(400, 401, 429), tag="locker")},
            "/api/locker/deposits": {"post": operation(
                "Start a deposit: choose a free working compartment of the size and open it", deposit,
                body=obj(waybill=STRING, phone=STRING, size={"enum": ["S", "M", "L"]}),
                errors=(400, 409, 503), ok_status=201, courier=True, tag="locker")},
            "/api/locker/deposits/{deposit_id}": {"get": operation(
                "A deposit's state", deposit, errors=(404,), courier=True, tag="locker")},
            "/api/locker/deposits/{deposit_id}/cancel": {"post": operation(
                "Cancel before the door is closed on an item", deposit, errors=(404, 409), courier=True,
                tag="locker")},
            "/api/locker/deposits/{deposit_id}/reopen": {"post": operation(
                "Reopen a door closed with nothing seen inside", deposit, errors=(404, 409, 503),
                courier=True, tag="locker")},
            "/api/locker/deposits/{deposit_id}/door-not-opened": {"post": operation(
                "The door did not open: flag it, open another", deposit, errors=(404, 409, 503),
                courier=True, tag="locker")},
            "/api/locker/pickup": {"post": operation(
                "Resident pickup by 8-digit code (wrong codes rate-limited per kiosk)", pickup,
                body=obj(code=STRING), errors=(400, 403, 409, 429, 503), tag="locker")},
            "/api/locker/pickup/token": {"post": operation(
                "Resident pickup by the QR token from the pickup notice (single use)", pickup,
                body=obj(token=STRING), errors=(400, 403, 409, 503), tag="locker")},
            "/api/locker/pickups/{pickup_id}": {"get": operation(
                "A pickup's or return's state (by pickup id or parcel id)", pickup, errors=(404,),
                tag="locker")},
            "/api/locker/compartments": {"get": operation(
                "Every compartment (phones masked, no codes)",
                obj(compartments={"type": "array", "items": ref("Compartment")}), tag="locker")},
            "/api/locker/pickups/{pickup_id}/refuse": {"post": operation(
                "The resident refuses the parcel (damaged, wrong, short): it goes back in, the door "
                "closes, the parcel waits for its courier (parcel.refused)", pickup,
                body=obj(["reason"], reason={"enum": ["damaged", "wrong", "short"]}),
                errors=(400, 404, 409, 503), tag="locker")},
            "/api/locker/pickups/{pickup_id}/next": {"post": operation(
                "One code, every parcel (locker.one_code_all_parcels): after this door closed, open the "
                "same resident's next parcel; next_doors lists those still to open", pickup,
                errors=(404, 409, 503), tag="locker")},
            "/api/locker/sends": {"post": operation(
                "A resident sends a parcel (寄件) with a send code from the courier company's app: a "
                "free door of the size opens (a door that does not open is flagged and one more, of the "
                "size or larger, is tried: compartment is the door to use, not_opened the doors that "
                "did not open); refused while the locker camera gives no picture, and for a send code "
                "that already sent a parcel", send,
                body=obj(["company", "size", "send_code"], company=STRING, size={"enum": ["S", "M", "L"]},
                         send_code=STRING),
                errors=(400, 409, 503), ok_status=201, tag="locker")},
            "/api/locker/sends/{send_id}": {"get": operation(
                "An outgoing parcel's state", send, errors=(404,), tag="locker")},
            "/api/locker/outgoing": {"get": operation(
                "Outgoing parcels waiting for this courier's company", obj(parcels={"type": "array",
                                                                                    "items": send}),
                courier=True, tag="locker")},
            "/api/locker/outgoing/{send_id}/collect": {"post": operation(
                "Open an outgoing parcel's door for a courier of its company", send,
                errors=(404, 409, 503), courier=True, tag="locker")},
            "/api/locker/overdue": {"get": operation(
                "Parcels past retention, for couriers to take back",
                obj(parcels={"type": "array", "items": {"type": "object"}}), courier=True, tag="locker")},
            "/api/locker/returns": {"post": operation(
                "Open an overdue parcel's door, or a refused one's for the courier who brought it, "
                "for the courier to take it back", pickup,
                body=obj(parcel_id=STRING), errors=(400, 404, 409, 503), courier=True, tag="locker"),
                "get": operation(
                "What this courier may take back: parcels refused at the door that they brought, "
                "then overdue ones", obj(parcels={"type": "array"}), courier=True, tag="locker")},
            "/api/sim/lockboard/state": {"get": operation(
                "Simulate mode only: the simulated boards", obj(boards={"type": "array"}), tag="simulator")},
            "/api/sim/lockboard/door": {"post": operation(
                "Simulate mode only: push a door shut or pull it open", obj(ok=BOOLEAN),
                body={**comp, "properties": {"compartment": INTEGER, "action": {"enum": ["close", "open"]}}},
                errors=(400, 404), tag="simulator")},
            "/api/sim/lockboard/item": {"post": operation(
                "Simulate mode only: put an item in or take it out", obj(ok=BOOLEAN),
                body={**comp, "properties": {"compartment": INTEGER, "present": BOOLEAN}},
                errors=(400, 404), tag="simulator")},
            "/api/sim/lockboard/jam": {"post": operation(
                "Simulate mode only: a latch that will not open", obj(ok=BOOLEAN),
                body={**comp, "properties": {"compartment": INTEGER, "jammed": BOOLEAN}},
                errors=(400, 404), tag="simulator")},
            "/api/sim/lockboard/offline": {"post": operation(
                "Simulate mode only: a board stops (or starts) answering", obj(ok=BOOLEAN),
                body=obj(["board"], board=INTEGER, offline=BOOLEAN), errors=(400,), tag="simulator")},
        },
    }


OPENAPI = _openapi()
