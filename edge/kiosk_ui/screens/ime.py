"""The on-screen keyboard's server side: pinyin candidates and handwriting recognition.

The keyboard itself is static/keyboard.js; it asks here as the resident taps. Both lookups are
local (a SQLite dictionary, the zinnia recogniser): nothing typed or drawn leaves the box, and
nothing is logged or stored.
"""
from __future__ import annotations

import functools
import re
import threading
from pathlib import Path
from typing import Any

import structlog
from flask import Blueprint, Flask, current_app, jsonify, request
from flask_babel import gettext as _

from edge.ime import HandwritingRecogniser, HandwritingUnavailable, PinyinDictionary
from edge.ime.handwriting import DEFAULT_MODEL, check_strokes
from edge.ime.pinyin import default_dictionary_dir, dictionary_file

bp = Blueprint("ime", __name__, url_prefix="/ime")
log = structlog.get_logger(__name__)


class KeyboardBackends:
    """The app's one dictionary and one recogniser, opened lazily and shared by all requests."""

    def __init__(self, dictionary_dir: Path, model: Path) -> None:
        self.dictionary = PinyinDictionary(dictionary_file(dictionary_dir))
        self.recogniser = HandwritingRecogniser(model)

    def warm(self) -> None:
        """Compile (first start on this box) or open the dictionary and the model, off the
        request path, so the first tap does not wait."""
        self.recogniser.unavailable_reason()
        try:
            self.dictionary.warm()
        except Exception:  # noqa: BLE001 - the first lookup retries and answers with the error
            log.exception("ime.dictionary_build_failed")


def _dictionary_dir(app: Flask) -> Path:
    configured = app.config.get("IME_DICTIONARY_DIR")  # tests and the bench may pick a folder
    return Path(configured) if configured else default_dictionary_dir(
        app.extensions["edge"].settings.data_dir)


def backends() -> KeyboardBackends:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return app.extensions["kiosk_ime"]


@bp.record_once
def _install(state: Any) -> None:
    app = state.app
    found = shared_backends(_dictionary_dir(app),
                            Path(app.config.get("IME_HANDWRITING_MODEL", DEFAULT_MODEL)))
    app.extensions["kiosk_ime"] = found
    threading.Thread(target=found.warm, name="ime-warm", daemon=True).start()


@functools.lru_cache(maxsize=4)
def shared_backends(dictionary_dir: Path, model: Path) -> KeyboardBackends:
    """One per files, for the process: read-only data, no need for a copy per app."""
    return KeyboardBackends(dictionary_dir, model)


@bp.app_context_processor
def _keyboard_context() -> dict[str, Any]:
    reason = backends().recogniser.unavailable_reason()
    return {"keyboard": {"handwriting_missing": reason is not None}}


_FIELD_TAG = re.compile(r"<(textarea|input)\b[^>]*>", re.IGNORECASE)


def _attribute(tag: str, name: str) -> str | None:
    found = re.search(rf"""\s{name}\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", tag, re.IGNORECASE)
    return None if found is None else next(g for g in found.groups() if g is not None).lower()


@bp.app_template_test("needing_keyboard")
def needs_keyboard(html: str) -> bool:
    """Whether a rendered screen has a field the on-screen keyboard serves (keyboard.js's
    FIELDS): a textarea, or an input of type text (or of no type) not marked inputmode=none,
    and neither of them marked data-keyboard=off.
    Screens without one (keypads only, or no fields) leave the keyboard out: ~70 buttons, a
    stylesheet and a script less to render and parse on every tap (ADR 0129)."""
    for found in _FIELD_TAG.finditer(html):
        tag = found.group(0)
        if _attribute(tag, "data-keyboard") == "off":
            continue
        if found.group(1).lower() == "textarea" or (
                _attribute(tag, "type") in (None, "text") and _attribute(tag, "inputmode") != "none"):
            return True
    return False


@bp.get("/pinyin")
def pinyin_candidates() -> Any:
    try:
        found = backends().dictionary.candidates(request.args.get("q", ""))
    except ValueError as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(candidates=[{"text": c.text, "consumed": c.consumed} for c in found])


@bp.post("/handwriting")
def handwriting_candidates() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="send JSON: {width, height, strokes: [[[x, y], ...], ...]}"), 400
    try:
        strokes = check_strokes(body.get("strokes"), body.get("width"), body.get("height"))
    except ValueError as exc:
        return jsonify(error=str(exc)), 400
    try:
        found = backends().recogniser.classify(strokes, body["width"], body["height"])
    except HandwritingUnavailable:
        return jsonify(error=_("Handwriting is not available on this kiosk. Please use pinyin "
                               "or ask staff.")), 503
    return jsonify(candidates=[{"text": c.text} for c in found])
