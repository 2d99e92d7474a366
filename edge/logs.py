"""Logging: structlog key=value lines on stderr (journald keeps them on the box).

Never log a pickup code, a full phone number or iris data: pass masked values or ids. As a
second line of defence every line goes through `redact`, which blanks anything shaped like
a pickup code, a token, a mainland mobile number or a key, and tracebacks are plain: no
frame's local variables (a local in the deposit path holds a pickup code).
"""
from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

# Order matters: tokens and keys before the digit runs inside them.
_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"P1\.[A-Za-z0-9_.-]+"), "[token]"),  # pickup QR token
    (re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_.-]*"), "[token]"),  # JWS (personal QR token)
    (re.compile(r"(?<![A-Za-z0-9])[0-9a-fA-F]{32,}(?![A-Za-z0-9])"), "[key]"),  # long hex
    (re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])"), "[phone]"),  # 11-digit CN mobile
    (re.compile(r"(?<![0-9])[0-9]{8}(?![0-9])"), "[code]"),  # pickup code
)
# Long base64/base64url runs are keys or sealed secrets when they mix upper case, lower case
# and digits; file paths and identifiers of the same length do not.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{32,}={0,2}")


def _key_shaped(match: re.Match[str]) -> str:
    run = match.group(0)
    mixed = any(c.isupper() for c in run) and any(c.islower() for c in run) and any(c.isdigit() for c in run)
    return "[key]" if mixed else run


def redact(text: str) -> str:
    """`text` with every secret-shaped part replaced by a marker."""
    text = _BASE64_RUN.sub(_key_shaped, text)
    for pattern, marker in _REDACTIONS:
        text = pattern.sub(marker, text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and len(str(abs(value))) in (8, 11):
        return redact(str(value))
    return value


def redact_secrets(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: redact every value of the event (after exceptions are text)."""
    return {key: _redact_value(value) for key, value in event_dict.items()}


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is now (a test runner may swap and close it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


class _RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """The rendered line redacted once more: nothing a processor missed gets out."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(level: str = "INFO") -> None:
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = _StderrHandler()
    handler.setFormatter(
        _RedactingFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,  # plain traceback text, no locals
                redact_secrets,
                structlog.dev.ConsoleRenderer(colors=False,
                                              exception_formatter=structlog.dev.plain_traceback),
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
