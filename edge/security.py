"""`edge diag security`: what the station's protections rest on, checked on this box
(docs/security.md): file modes, the local API credential, broker TLS and credentials, and
the platform key that pickup codes are sealed to."""
from __future__ import annotations

import stat
from typing import Any

from edge.files import loose_modes
from edge.settings import Settings, is_loopback_host


def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"check": name, "ok": ok, "detail": detail}


def security_checks(settings: Settings) -> list[dict[str, Any]]:
    return [_file_modes(settings), _api_token(settings), _platform_key(settings),
            _broker_tls(settings), _broker_credentials(settings)]


def _file_modes(settings: Settings) -> dict[str, Any]:
    if not settings.data_dir.is_dir():
        return _check("file modes", False, f"{settings.data_dir} does not exist yet (edge run creates it)")
    loose = loose_modes(settings.data_dir)
    if loose:
        return _check("file modes", False, "readable by others: " + ", ".join(loose[:5])
                      + (f" (and {len(loose) - 5} more)" if len(loose) > 5 else ""))
    return _check("file modes", True, f"{settings.data_dir} 0700, its files 0600")


def _api_token(settings: Settings) -> dict[str, Any]:
    from edge.kiosk_ui.guard import API_TOKEN_FILE

    path = settings.data_dir / API_TOKEN_FILE
    if not path.exists():
        return _check("local API credential", False, f"{path} missing (the controller creates it at start)")
    mode = stat.S_IMODE(path.stat().st_mode)
    return _check("local API credential", mode & 0o077 == 0, f"{path} {mode:04o}")


def _platform_key(settings: Settings) -> dict[str, Any]:
    key = settings.mqtt.platform_public_key
    if not key:
        return _check("platform key", False, "mqtt.platform_public_key is not set: deposits are refused")
    return _check("platform key", True, f"pickup codes are sealed to X25519 key {key[:8]}…")


def _broker_tls(settings: Settings) -> dict[str, Any]:
    mqtt = settings.mqtt
    if not mqtt.host:
        return _check("broker TLS", True, "no broker set: offline, events queue")
    if mqtt.uses_tls:
        return _check("broker TLS", True, f"TLS to {mqtt.host}:{mqtt.port}"
                      + (f", CA {mqtt.tls_ca}" if mqtt.tls_ca else ", system CAs"))
    if is_loopback_host(mqtt.host):
        return _check("broker TLS", True, f"plain text to loopback {mqtt.host} (development)")
    return _check("broker TLS", False, f"PLAIN TEXT to {mqtt.host} (mqtt.insecure_plaintext = true)")


def _broker_credentials(settings: Settings) -> dict[str, Any]:
    mqtt = settings.mqtt
    if not mqtt.host:
        return _check("broker credentials", True, "no broker set")
    cert = mqtt.client_cert or mqtt.tls_cert
    kinds = ([f"client certificate {cert}"] if cert else []) + (
        [f"user {mqtt.username}" + (" with password file" if mqtt.password_file else " WITHOUT password")]
        if mqtt.username else [])
    ok = bool(cert) or bool(mqtt.username and mqtt.password_file)
    if is_loopback_host(mqtt.host) and not kinds:
        return _check("broker credentials", True, "none (loopback broker, development)")
    return _check("broker credentials", ok, ", ".join(kinds) or "none: the broker must not accept anonymous devices")
