"""Handwritten Chinese characters -> candidates, with Debian's zinnia and the Tegaki model.

zinnia is a small C library (libzinnia0, SVM over stroke features) with a plain C API, called
here through ctypes; no Python binding for it is packaged. The model comes from Debian's
tegaki-zinnia-simplified-chinese. When either is missing, `HandwritingRecogniser.available()`
says why, so the keyboard can show that instead of failing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import threading
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL = Path("/usr/share/tegaki/models/zinnia/handwriting-zh_CN.model")
LIBRARY_NAMES = ("libzinnia.so.0", "zinnia")
MAX_STROKES = 40
MAX_POINTS = 4000  # over all strokes: a character is tens of points a stroke
CANVAS_MAX = 4096

Stroke = list[tuple[int, int]]


class HandwritingUnavailable(RuntimeError):
    """The library or the model is not on this box."""


@dataclass(frozen=True)
class HandwritingCandidate:
    text: str
    score: float


def _load_library() -> ctypes.CDLL:
    for name in LIBRARY_NAMES:
        found = ctypes.util.find_library(name) if "." not in name else name
        if not found:
            continue
        try:
            lib = ctypes.CDLL(found)
        except OSError:
            continue
        _declare(lib)
        return lib
    raise HandwritingUnavailable("libzinnia0 is not installed")


def _declare(lib: ctypes.CDLL) -> None:
    p, size, i = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int
    signatures = {
        "zinnia_recognizer_new": ([], p),
        "zinnia_recognizer_open": ([p, ctypes.c_char_p], i),
        "zinnia_recognizer_strerror": ([p], ctypes.c_char_p),
        "zinnia_recognizer_classify": ([p, p, size], p),
        "zinnia_recognizer_destroy": ([p], None),
        "zinnia_character_new": ([], p),
        "zinnia_character_set_width": ([p, size], None),
        "zinnia_character_set_height": ([p, size], None),
        "zinnia_character_add": ([p, size, i, i], i),
        "zinnia_character_destroy": ([p], None),
        "zinnia_result_value": ([p, size], ctypes.c_char_p),
        "zinnia_result_score": ([p, size], ctypes.c_float),
        "zinnia_result_size": ([p], size),
        "zinnia_result_destroy": ([p], None),
    }
    for name, (args, result) in signatures.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = args, result


def check_strokes(strokes: object, width: object, height: object) -> list[Stroke]:
    """Strokes from the page, checked: a list of strokes, each a list of [x, y] in the canvas."""
    if not (isinstance(width, int) and isinstance(height, int)
            and 0 < width <= CANVAS_MAX and 0 < height <= CANVAS_MAX):
        raise ValueError("width and height are whole pixels, 1 to 4096")
    if not isinstance(strokes, list) or not 0 < len(strokes) <= MAX_STROKES:
        raise ValueError(f"strokes is a list of 1 to {MAX_STROKES} strokes")
    checked: list[Stroke] = []
    total = 0
    for stroke in strokes:
        if not isinstance(stroke, list) or not stroke:
            raise ValueError("each stroke is a non-empty list of [x, y] points")
        points = []
        for point in stroke:
            if not (isinstance(point, list) and len(point) == 2
                    and all(isinstance(v, int | float) and not isinstance(v, bool) for v in point)):
                raise ValueError("each point is [x, y]")
            x, y = (min(max(int(round(v)), 0), limit) for v, limit in zip(point, (width, height)))
            points.append((x, y))
        total += len(points)
        checked.append(points)
    if total > MAX_POINTS:
        raise ValueError(f"at most {MAX_POINTS} points")
    return checked


class HandwritingRecogniser:
    """One zinnia recogniser, opened on first use and shared (calls are serialised)."""

    def __init__(self, model: Path = DEFAULT_MODEL) -> None:
        self.model = Path(model)
        self._lock = threading.Lock()
        self._lib: ctypes.CDLL | None = None
        self._recogniser: int | None = None

    def unavailable_reason(self) -> str | None:
        """None when handwriting works here; else what is missing, in a few words."""
        try:
            self._open()
        except HandwritingUnavailable as exc:
            return str(exc)
        return None

    def _open(self) -> tuple[ctypes.CDLL, int]:
        with self._lock:
            if self._recogniser is None:
                if not self.model.is_file():
                    raise HandwritingUnavailable(f"handwriting model not found: {self.model.name}")
                lib = _load_library()
                recogniser = lib.zinnia_recognizer_new()
                if not lib.zinnia_recognizer_open(recogniser, str(self.model).encode()):
                    reason = lib.zinnia_recognizer_strerror(recogniser) or b"cannot open the model"
                    lib.zinnia_recognizer_destroy(recogniser)
                    raise HandwritingUnavailable(reason.decode(errors="replace"))
                self._lib, self._recogniser = lib, recogniser
            assert self._lib is not None
            return self._lib, self._recogniser

    def classify(self, strokes: list[Stroke], width: int, height: int,
                 best: int = 10) -> list[HandwritingCandidate]:
        lib, recogniser = self._open()
        with self._lock:
            character = lib.zinnia_character_new()
            try:
                lib.zinnia_character_set_width(character, width)
                lib.zinnia_character_set_height(character, height)
                for index, stroke in enumerate(strokes):
                    for x, y in stroke:
                        lib.zinnia_character_add(character, index, x, y)
                result = lib.zinnia_recognizer_classify(recogniser, character, best)
                if not result:
                    return []
                try:
                    return [HandwritingCandidate(lib.zinnia_result_value(result, i).decode(),
                                                 float(lib.zinnia_result_score(result, i)))
                            for i in range(lib.zinnia_result_size(result))]
                finally:
                    lib.zinnia_result_destroy(result)
            finally:
                lib.zinnia_character_destroy(character)

    def close(self) -> None:
        with self._lock:
            if self._recogniser is not None and self._lib is not None:
                self._lib.zinnia_recognizer_destroy(self._recogniser)
            self._recogniser = None
