"""Live state for open pages, pushed with server-sent events (ADR 0062).

A page names one topic; its stream sends the topic's whole state at once and again whenever
it changes, so a page never shows a stale door. The services' change callbacks only wake the
streams; each stream re-reads the state from the service itself (one source of truth).
The stream also carries presence (the screen saver wakes on it) and scanner readings.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request, session

from edge.kiosk_ui.screens.common import controller
from edge.live import LiveHub

bp = Blueprint("live", __name__, url_prefix="/live")

STREAM_MAX_S = 120.0  # streams end now and then; EventSource reconnects (frees stuck threads)
HEARTBEAT_S = 1.0  # a write each second notices a page that went away within a second


def hub() -> LiveHub:
    """The controller's live hub (the composition root builds it and wires what wakes it)."""
    live = controller().services.live
    assert live is not None, "create_app checks that the controller has a live hub"
    return live


def topic_reader(topic: str) -> Callable[[], dict[str, Any]]:
    """The function that reads a topic's state now; 404 for topics this visitor may not see.
    It runs later on the stream's thread, outside the request: it captures what it needs."""
    kind, _, key = topic.partition(":")
    services, live = controller().services, hub()
    if kind == "presence":
        return lambda: {}
    if kind == "scan":
        return lambda: {"scan": "ready" if live.scan_waiting() else "waiting"}
    if kind == "pickup" and key in session.get("pickups", []):
        locker = services.locker
        return lambda: _view_state(locker.pickup_status(key))
    if kind == "deposit" and key in session.get("deposits", []):
        locker = services.locker
        return lambda: _view_state(locker.deposit_status(key))
    if kind == "send" and key in session.get("sends", []):
        locker = services.locker
        return lambda: _view_state(locker.send_status(key))
    if kind == "bookings" and session.get("resident"):
        bookings, resident_id = services.bookings, session["resident"]["resident_id"]
        return lambda: {f"booking:{b.booking_id}": b.state for b in bookings.bookings_of(resident_id)}
    if kind == "iris":  # whoever stands at the camera: the gates' verdict, no picture (ADR 0144)
        iris = services.iris
        if iris is None or not iris.has_camera:
            abort(404)
        return lambda: iris.guidance().state()
    if kind == "mine" and session.get("resident"):
        from edge.kiosk_ui.screens.mine import live_state_reader

        return live_state_reader()
    abort(404)


SIMULATED_SHOWING_FRAMES = 45  # about 3 s of scanning: long enough to read, then gone


def show_to_simulated_camera(text: str) -> bool:
    """Simulate mode: a pasted code is held up to the simulated QR camera, so the real
    scanner and decoder read it. False when there is no simulated camera (or no text)."""
    simulation = controller().simulation
    return simulation is not None and simulation.show_qr(text, SIMULATED_SHOWING_FRAMES)


def topic_watch(topic: str) -> AbstractContextManager[Any]:
    """What a stream keeps running while it is open: the QR scanner for "scan" (ADR 0046),
    the iris camera's live guidance for "iris" (ADR 0144), which wakes the streams on
    every change of verdict."""
    live = hub()
    if topic == "scan":
        return live.watching_scan()
    iris = controller().services.iris
    if topic == "iris" and iris is not None:
        return iris.guiding(live.notify)
    return nullcontext()


def _view_state(view: Any) -> dict[str, Any]:
    return {"state": view.state, "compartment": view.compartment}


@bp.get("/stream")
def stream() -> Response:
    topic = request.args.get("topic", "presence")
    live, read, watch = hub(), topic_reader(topic), topic_watch(topic)

    def events() -> Iterator[str]:
        with watch:
            yield "retry: 1000\n\n"
            sent: str | None = None
            version, started = -1, time.monotonic()
            while time.monotonic() - started < STREAM_MAX_S and not live.closed:
                state = {**_safe(read), "presence": live.present()}
                body = json.dumps(state, sort_keys=True, default=str)
                yield f"event: state\ndata: {body}\n\n" if body != sent else ": beat\n\n"
                sent = body
                version = live.wait(version, HEARTBEAT_S)

    return Response(events(), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@bp.get("/state")
def state() -> Any:
    """The same state as one JSON answer (tests, diagnostics, polling fallback)."""
    return jsonify({**_safe(topic_reader(request.args.get("topic", "presence"))),
                    "presence": hub().present()})


@bp.post("/scanner")
def scanner_reading() -> Any:
    """The QR scanner posts what it read: {"code": "..."} (loopback only, like the whole app)."""
    payload = request.get_json(silent=True) or {}
    code = payload.get("code")
    if not isinstance(code, str) or not code.strip() or len(code) > 2048:
        return jsonify(error="send {\"code\": \"<what the scanner read>\"}"), 400
    hub().scanned(code.strip())
    return jsonify(ok=True)


def _safe(read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return read()
    except Exception as exc:  # a gone parcel or a service error: say so, keep the stream up
        return {"state": "unknown", "error": getattr(exc, "code", type(exc).__name__)}
