"""Operations endpoints on the local server (127.0.0.1 only): GET /metrics (Prometheus),
GET /healthz/parts (what `edge update mark-good` waits for), and the request-latency hook."""
from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST

from edge.ops.metrics import observe_requests, render


def register(app: Flask, controller: Any) -> None:
    observe_requests(app)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(render(controller), mimetype=CONTENT_TYPE_LATEST)

    @app.get("/healthz/parts")
    def healthz_parts() -> Any:
        parts = health_parts(controller)
        healthy = all(value is not False for value in parts.values())
        return jsonify(ok=healthy, version=_version(), parts=parts), 200 if healthy else 503


def health_parts(controller: Any) -> dict[str, bool | None]:
    """Each part the controller has: True healthy, False not, None not configured here."""
    from sqlalchemy import text

    parts: dict[str, bool | None] = {"database": False, "lock_bus": None, "mqtt": None}
    try:
        with controller.db.read() as session:
            parts["database"] = session.execute(text("SELECT 1")).scalar() == 1
    except Exception:  # noqa: BLE001 - reported as unhealthy
        parts["database"] = False
    locker = controller.services.locker
    if locker is not None:
        try:
            seen: dict[int, bool] = {}
            for compartment in locker.snapshot():
                seen[compartment["board"]] = seen.get(compartment["board"], False) or \
                    compartment["latch"] != "unknown"
            parts["lock_bus"] = bool(seen) and all(seen.values())
        except Exception:  # noqa: BLE001
            parts["lock_bus"] = False
    bridge = controller.services.bridge
    if bridge is not None and controller.settings.mqtt.host:
        parts["mqtt"] = bridge.connected.is_set()
    return parts


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("community-station-edge")
    except PackageNotFoundError:
        return "0+unknown"
