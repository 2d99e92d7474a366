"""What every request to the local web app must pass before a view runs (ADR 0110).

- Host must name the loopback (127.0.0.1, localhost or [::1], on our port when it is known):
  a page on another origin that rebinds its DNS name to 127.0.0.1 is refused (421).
- Bodies are at most MAX_BODY_BYTES (413) and JSON is `application/json` only; nesting too
  deep for the parser is a 400, never a 500.
- The JSON API's state-changing calls that are not a courier's session need the local API
  credential: `Authorization: Bearer <the text of <data_dir>/api.token>`, a 0600 file only
  the controller's user and root can read (`edge diag` reads it). The kiosk's screens do not
  use the JSON API: they call services in-process behind CSRF-checked forms.
"""
from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, Request, Response, current_app, jsonify, request
from werkzeug.exceptions import BadRequest

MAX_BODY_BYTES = 64 * 1024
API_TOKEN_FILE = "api.token"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class EdgeRequest(Request):
    """JSON is `application/json` exactly (not application/*+json), and a body nested too
    deep for the parser is a bad request, not a crash."""

    @property
    def is_json(self) -> bool:
        return self.mimetype == "application/json"

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        try:
            return super().get_json(force=force, silent=silent, cache=cache)
        except RecursionError:
            if silent:
                return None
            raise BadRequest("the JSON body is nested too deeply") from None


def load_or_create_api_token(data_dir: Path) -> str:
    """The local API credential, created once (O_EXCL, 0600) in the data folder."""
    path = Path(data_dir) / API_TOKEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def _refusal(code: str, message: str, status: int) -> Response:
    response = jsonify(error={"code": code, "message": message})
    response.status_code = status
    return response


def bearer_is_api_token() -> bool:
    header = request.headers.get("Authorization", "")
    given = header[7:].strip() if header.startswith("Bearer ") else ""
    return bool(given) and hmac.compare_digest(given.encode(), current_app.config["EDGE_API_TOKEN"].encode())


def require_api_token() -> Response | None:
    """For a blueprint's before_request: refuse a state-changing call without the credential."""
    if request.method in SAFE_METHODS or bearer_is_api_token():
        return None
    return _refusal("unauthorised", "this call needs the local API credential (Authorization: Bearer, "
                    "from the controller's api.token)", 401)


def _host_is_loopback(port: int) -> bool:
    host = request.host.lower()
    name, _, given_port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    if not name:
        name, given_port = host, ""
    if name not in LOOPBACK_NAMES:
        return False
    return not (port and given_port and given_port != str(port))


def install_guard(app: Flask, data_dir: Path, port: int) -> None:
    app.request_class = EdgeRequest
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["EDGE_API_TOKEN"] = load_or_create_api_token(data_dir)

    @app.before_request
    def _check_request() -> Response | None:
        if not _host_is_loopback(port):
            return _refusal("misdirected", "this station answers only on its loopback address", 421)
        if request.path.startswith("/api/") and request.method not in SAFE_METHODS \
                and request.content_length and request.mimetype != "application/json":
            return _refusal("unsupported_media_type", "send application/json", 415)
        return None
