"""The JSON API's shared parts: error answers (a status per LockerError code), courier
sessions and the `courier_required` check, the request helpers, and the guard every locker
blueprint installs. The routes are in edge/kiosk_ui/api/locker.py and diag.py.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from edge.locker.errors import InvalidInput, LockerError
from edge.storage import StorageFull

if TYPE_CHECKING:
    from edge.locker.service import LockerService

COURIER_SESSION_S = 15 * 60

# HTTP status per LockerError code; anything else is 409 (the request conflicts with state).
STATUS = {
    "invalid_input": 400, "bad_phone": 400, "bad_waybill": 400, "bad_size": 400,
    "bad_code_format": 400, "invalid_json": 400, "unauthorised": 401, "unknown_courier": 401,
    "wrong_code": 403, "code_used": 403, "token_refused": 403, "not_found": 404, "cooling_down": 429,
    "board_unreachable": 503, "compartment_out_of_service": 503, "no_locker": 503,
    "storage_full": 503, "no_platform_key": 503,
    "bad_reason": 400, "bad_send_code": 400, "unknown_company": 400, "camera_unhealthy": 503,
}


class CourierSessions:
    """Courier session tokens in memory: a restart logs couriers out, which is the safe side."""

    def __init__(self, ttl_s: float = COURIER_SESSION_S) -> None:
        self._ttl_s = ttl_s
        self._sessions: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def open(self, courier_id: str) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            now = time.monotonic()
            self._sessions = {t: v for t, v in self._sessions.items() if v[1] > now}
            self._sessions[token] = (courier_id, now + self._ttl_s)
        return token

    def courier(self, token: str) -> str | None:
        with self._lock:
            found = self._sessions.get(token)
        return found[0] if found and found[1] > time.monotonic() else None


def error(code: str, message: str, status: int | None = None, **details: Any) -> Response:
    body = {"error": {"code": code, "message": message, **details}}
    response = jsonify(body)
    response.status_code = status or STATUS.get(code, 409)
    return response


def locker_error(exc: LockerError) -> Response:
    response = error(exc.code, exc.message, **exc.details)
    if exc.code == "cooling_down":
        response.headers["Retry-After"] = str(exc.details.get("seconds_left", 1))
    return response


def service() -> "LockerService":
    return current_app.extensions["edge"].services.locker


def kiosk_id() -> str:
    """The API is one more client of this box's kiosk: wrong codes count against the same
    limit as the screens' (which use the device id), and the caller cannot pick another."""
    return current_app.extensions["edge"].settings.mqtt.device_id


def json_body(*required: str) -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("invalid_json", "send a JSON object")
    missing = [name for name in required if not isinstance(body.get(name), str) or not body[name].strip()]
    if missing:
        raise InvalidInput("invalid_input", f"missing or empty: {', '.join(missing)}")
    return body


def courier_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        courier_id = current_app.extensions["courier_sessions"].courier(token) if token else None
        if courier_id is None:
            return error("unauthorised", "log in with a courier code first")
        g.courier_id = courier_id
        return view(*args, **kwargs)

    return wrapped


def guard_locker_blueprint(blueprint: Blueprint, service_name: str) -> None:
    """Answer `no_locker` on a box without a locker, and JSON errors for domain failures."""

    @blueprint.before_request
    def _locker_present() -> Response | None:
        if getattr(current_app.extensions["edge"].services, service_name) is None:
            return error("no_locker", "this station has no parcel locker configured")
        return None

    blueprint.register_error_handler(LockerError, locker_error)
    blueprint.register_error_handler(StorageFull, storage_full)



def storage_full(exc: StorageFull) -> Response:
    return error("storage_full", f"the box cannot take new work right now: {exc}")
