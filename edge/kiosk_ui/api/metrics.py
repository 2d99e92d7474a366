"""GET /metrics: the station's Prometheus metrics, on the local server (127.0.0.1 only),
and the request-latency hook that feeds edge_kiosk_request_seconds."""
from __future__ import annotations

from typing import Any

from flask import Flask, Response
from prometheus_client import CONTENT_TYPE_LATEST

from edge.ops.metrics import observe_requests, render


def register(app: Flask, controller: Any) -> None:
    observe_requests(app)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(render(controller), mimetype=CONTENT_TYPE_LATEST)
