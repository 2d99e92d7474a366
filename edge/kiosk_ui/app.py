"""Flask app factory. Blueprints reach domain services through `edge_services()`."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, jsonify

if TYPE_CHECKING:
    from edge.app import Controller


def create_app(controller: "Controller") -> Flask:
    app = Flask(__name__)
    app.config["EDGE_SETTINGS"] = controller.settings
    app.extensions["edge"] = controller
    from edge.kiosk_ui.screens import register_screens; register_screens(app)  # kiosk screens
    from edge.kiosk_ui.api import diag, locker, openapi  # JSON API: locker, diagnostics, its document
    locker.register(app, controller); diag.register(app); openapi.register(app)
    from edge.kiosk_ui.api import metrics; metrics.register(app, controller)  # /metrics, latency

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(ok=True)

    return app


def edge_controller() -> "Controller":
    return current_app.extensions["edge"]
