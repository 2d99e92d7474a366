"""Live state for open pages, pushed with server-sent events (ADR 0062).

A page names one topic; its stream sends the topic's whole state at once and again whenever
it changes, so a page never shows a stale door. The services' change callbacks only wake the
streams; each stream re-reads the state from the service itself (one source of truth).
The stream also carries presence (the screen saver wakes on it) and scanner readings.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, Protocol

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request, session

from edge.kiosk_ui.screens.common import controller

bp = Blueprint("live", __name__, url_prefix="/live")

PRESENCE_HOLD_S = 5.0  # someone seen this recently still counts as present
SCAN_FRESH_S = 30.0  # a scanner reading older than this is not claimed by anybody
STREAM_MAX_S = 120.0  # streams end now and then; EventSource reconnects (frees stuck threads)
HEARTBEAT_S = 1.0  # a write each second notices a page that went away within a second


class ScanSource(Protocol):
    """A QR camera scanner or a serial scanner (edge.drivers.qr / edge.drivers.scanner)."""

    def start(self, consumer: Callable[[str], None]) -> None: ...
    def stop(self) -> None: ...


class LiveHub:
    """Wakes every open stream when something changed; holds presence and the last scan."""

    def __init__(self, scan_source: ScanSource | None = None) -> None:
        self._changed = threading.Condition()
        self._version = 0
        self._presence_at = float("-inf")
        self._scan: tuple[str, float] | None = None
        self._closed = False
        self._scan_source = scan_source
        self._scan_watchers = 0
        self._scan_lock = threading.Lock()  # start/stop in the order watchers come and go

    def start(self) -> None:
        """Nothing to start; the hub is a controller component so that stop() ends streams."""

    def stop(self) -> None:
        """Ends every open stream now, so shutdown does not wait for their next beat."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def notify(self, *_event: Any) -> None:
        with self._changed:
            self._version += 1
            self._changed.notify_all()

    def presence_seen(self) -> None:
        self._presence_at = time.monotonic()
        self.notify()

    def present(self) -> bool:
        return time.monotonic() - self._presence_at < PRESENCE_HOLD_S

    def scanned(self, code: str) -> None:
        """A QR reading from the scanner; the page waiting for a scan claims it."""
        self._scan = (code, time.monotonic())
        self.notify()

    @contextmanager
    def watching_scan(self) -> Iterator[None]:
        """While a page waits for a scan (its stream is open on the scan topic), the scanner
        reads; when the last such page goes away, it stops (the camera is left alone)."""
        with self._scan_lock:
            self._scan_watchers += 1
            if self._scan_watchers == 1 and self._scan_source is not None:
                self._scan_source.start(self.scanned)
        try:
            yield
        finally:
            with self._scan_lock:
                self._scan_watchers -= 1
                if self._scan_watchers == 0 and self._scan_source is not None:
                    self._scan_source.stop()

    def scan_waiting(self) -> bool:
        return self._scan is not None and time.monotonic() - self._scan[1] < SCAN_FRESH_S

    def take_scan(self) -> str | None:
        scan, self._scan = self._scan, None
        if scan is None or time.monotonic() - scan[1] >= SCAN_FRESH_S:
            return None
        return scan[0]

    def wait(self, version: int, timeout: float) -> int:
        with self._changed:
            if self._version == version:
                self._changed.wait(timeout)
            return self._version


def hub_for(app: Flask) -> LiveHub:
    hub = app.extensions.get("kiosk_live")
    if hub is None:
        controller = app.extensions["edge"]
        hub = app.extensions["kiosk_live"] = LiveHub(controller.services.get("qr_scanner"))
        controller.components.append(hub)
        services = controller.services
        for name in ("locker", "bookings"):
            if name in services:
                services[name].subscribe(hub.notify)
        if "station_io" in services:
            services["station_io"].on_presence(hub.presence_seen)
    return hub


def hub() -> LiveHub:
    return hub_for(current_app)


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
        locker = services["locker"]
        return lambda: _view_state(locker.pickup_status(key))
    if kind == "deposit" and key in session.get("deposits", []):
        locker = services["locker"]
        return lambda: _view_state(locker.deposit_status(key))
    if kind == "bookings" and session.get("resident"):
        bookings, resident_id = services["bookings"], session["resident"]["resident_id"]
        return lambda: {f"booking:{b.booking_id}": b.state for b in bookings.bookings_of(resident_id)}
    abort(404)


SIMULATED_SHOWING_FRAMES = 45  # about 3 s of scanning: long enough to read, then gone


def show_to_simulated_camera(text: str) -> bool:
    """Simulate mode: a pasted code is held up to the simulated QR camera, so the real
    scanner and decoder read it. False when there is no simulated camera (or no text)."""
    camera = controller().services.get("qr_camera_sim")
    if camera is None or not text:
        return False
    camera.show_qr(text, frames=SIMULATED_SHOWING_FRAMES)
    return True


def _view_state(view: Any) -> dict[str, Any]:
    return {"state": view.state, "compartment": view.compartment}


@bp.get("/stream")
def stream() -> Response:
    topic = request.args.get("topic", "presence")
    live, read = hub(), topic_reader(topic)

    def events() -> Iterator[str]:
        with live.watching_scan() if topic == "scan" else nullcontext():
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
