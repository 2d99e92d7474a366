"""The kiosk's server-side session: what one person at the screen has entered, nothing more.

The cookie holds only a random id; identity, phone numbers and half-filled forms stay in this
process's memory, so "clear the session" really forgets them (ADR 0061). A session that has
seen no touch for longer than the idle timeout plus its warning is dropped on its next request,
even if the page's own timer never fired.
"""
from __future__ import annotations

import secrets
import threading
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, Request, Response, request
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from edge.clock import Clock

COOKIE = "kiosk_sid"
# Requests that watch the screen (live state) must not keep a forgotten session alive.
PASSIVE_BLUEPRINTS = frozenset({"live"})


class KioskSession(CallbackDict, SessionMixin):  # type: ignore[type-arg]
    def __init__(self, sid: str, data: dict[str, Any] | None = None) -> None:
        def on_update(_self: Any) -> None:
            self.modified = True

        super().__init__(data or {}, on_update)
        self.sid = sid
        self.modified = False


class KioskSessionStore(SessionInterface):
    def __init__(self, clock: Clock, lifetime_s: float) -> None:
        self._clock = clock
        self._lifetime = timedelta(seconds=lifetime_s)
        self._data: dict[str, tuple[dict[str, Any], datetime]] = {}
        self._lock = threading.Lock()

    def open_session(self, app: Flask, request: Request) -> KioskSession:
        sid = request.cookies.get(COOKIE, "")
        now = self._clock.now()
        with self._lock:
            self._forget_idle(now)
            stored = self._data.get(sid)
        if stored is None:
            return KioskSession(secrets.token_urlsafe(24))
        return KioskSession(sid, dict(stored[0]))

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, KioskSession)
        passive = request.blueprint in PASSIVE_BLUEPRINTS
        with self._lock:
            stored = self._data.get(session.sid)
            if passive:
                if stored is not None and session.modified:
                    self._data[session.sid] = (dict(session), stored[1])
                return
            if not session and stored is None:
                return
            self._data[session.sid] = (dict(session), self._clock.now())
        response.set_cookie(COOKIE, session.sid, httponly=True, samesite="Strict", path="/")

    def forget(self, sid: str) -> None:
        with self._lock:
            self._data.pop(sid, None)

    def count(self) -> int:
        with self._lock:
            return len(self._data)

    def _forget_idle(self, now: datetime) -> None:
        expired = [sid for sid, (_, seen) in self._data.items() if now - seen > self._lifetime]
        for sid in expired:
            del self._data[sid]
