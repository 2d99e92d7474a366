"""Where opened secrets go: a Notifier texts the resident (an SMS provider plugs in here).

A notifier gets the event (its data without the ciphertext) and the opened secret. It must
not log or store the code; the logging one that ships shows only a masked phone.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

log = structlog.get_logger("fleet.notify")

# Events whose data.secret the platform opens, and why.
SEALED_EVENT_TYPES = frozenset({"parcel.deposited", "identity.otp_requested"})


@dataclass(frozen=True)
class Notification:
    type: str
    site_id: str
    device_id: str
    message_id: str
    data: dict[str, Any]  # the event's data, data.secret removed
    secret: dict[str, Any] = field(repr=False)  # the opened plaintext: code, token, phone


class Notifier(Protocol):
    def notify(self, notification: Notification) -> None: ...


def mask_phone(phone: str | None) -> str:
    return f"{phone[:3]}****{phone[-4:]}" if phone and len(phone) >= 7 else "****"


class LoggingNotifier:
    """Logs that a resident would be texted: masked phone, no code, no token."""

    def notify(self, notification: Notification) -> None:
        phone = notification.secret.get("phone") or notification.data.get("phone")
        log.info("notify_resident", type=notification.type, site_id=notification.site_id,
                 device_id=notification.device_id, message_id=notification.message_id,
                 phone=mask_phone(phone) if phone and "*" not in phone else (phone or "****"),
                 fields=sorted(notification.secret))


class MemoryNotifier:
    """Keeps what it was given (tests, demos)."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []
        self._lock = threading.Lock()

    def notify(self, notification: Notification) -> None:
        with self._lock:
            self.sent.append(notification)
