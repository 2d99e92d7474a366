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

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(ok=True)

    return app


def edge_controller() -> "Controller":
    return current_app.extensions["edge"]
