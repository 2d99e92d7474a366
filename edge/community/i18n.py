"""Bilingual catalogue text: {"zh": "...", "en": "..."} from the platform, one language on screen."""
from __future__ import annotations

from typing import Protocol


class _Bilingual(Protocol):
    def get(self, lang: str, default: str | None = None, /) -> str | None: ...


def text(obj: _Bilingual | None, lang: str) -> str:
    """The text in `lang` ("zh", "zh_CN", "en", ...), else the other language, else "".
    `obj` is a catalogue Text or a plain {"zh": ..., "en": ...} dict."""
    if obj is None:
        return ""
    wanted = "en" if lang.lower().startswith("en") else "zh"
    other = "zh" if wanted == "en" else "en"
    return obj.get(wanted) or obj.get(other) or ""
