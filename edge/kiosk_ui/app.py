"""Flask app factory. Blueprints reach the controller through `edge_controller()` (screens
through `screens.common.controller()`) and its typed services as attributes."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, jsonify

if TYPE_CHECKING:
    from edge.controller import Controller


def create_app(controller: "Controller") -> Flask:
    """The web app over a controller from edge.app.build_controller (which also builds the
    live hub the screens' streams wait on)."""
    if controller.services.live is None:
        raise ValueError("the controller has no live hub: build it with edge.app.build_controller")
    app = Flask(__name__)
    app.config["EDGE_SETTINGS"] = controller.settings
    app.extensions["edge"] = controller
    from edge.kiosk_ui.guard import install_guard  # Host, body size, JSON type, API credential
    install_guard(app, controller.settings.data_dir, controller.settings.http.port)
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
