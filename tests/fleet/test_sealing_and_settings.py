"""Sealed secrets (the open side), the logging notifier, and settings errors."""
from __future__ import annotations

import base64
import uuid

import pytest
from structlog.testing import capture_logs

from fleet.notify import LoggingNotifier, Notification
from fleet.sealing import SealError, new_private_key, open_secret, public_key_b64
from fleet.settings import SettingsError, load_settings
from tests.support.fleet import seal


@pytest.fixture
def keys() -> tuple[bytes, bytes]:
    private = new_private_key()
    return private, base64.b64decode(public_key_b64(private))


def test_a_secret_opens_only_with_the_key_and_the_message_it_was_sealed_for(keys) -> None:
    private, public = keys
    message_id = str(uuid.uuid4())
    secret = seal(public, message_id, {"otp": "482913"})
    assert open_secret(private, message_id, secret) == {"otp": "482913"}
    with pytest.raises(SealError):
        open_secret(private, str(uuid.uuid4()), secret)  # moved to another message
    with pytest.raises(SealError):
        open_secret(new_private_key(), message_id, secret)  # another platform's key
    raw = bytearray(base64.urlsafe_b64decode(secret))
    raw[-1] ^= 1
    with pytest.raises(SealError):
        open_secret(private, message_id, base64.urlsafe_b64encode(bytes(raw)).decode())  # tampered
    with pytest.raises(SealError):
        open_secret(private, message_id, "not*base64")
    with pytest.raises(SealError):
        open_secret(private, message_id, base64.urlsafe_b64encode(b"short").decode())


def test_the_logging_notifier_logs_a_masked_phone_and_never_the_code() -> None:
    notification = Notification("parcel.deposited", "s1", "k1", str(uuid.uuid4()), {"parcel_id": "p-1"},
                                {"pickup_code": "48291375", "pickup_token": "tok-secret", "phone": "13800138000"})
    with capture_logs() as logs:
        LoggingNotifier().notify(notification)
    text = repr(logs)
    assert "138****8000" in text
    assert "48291375" not in text and "tok-secret" not in text and "13800138000" not in text
    assert "48291375" not in repr(notification)  # nor in a traceback's repr


def test_a_bad_setting_stops_with_one_line_naming_it(monkeypatch) -> None:
    monkeypatch.setenv("FLEET_MQTT__PORT", "not-a-port")
    with pytest.raises(SettingsError, match=r"FLEET_MQTT__PORT"):
        load_settings()
    monkeypatch.delenv("FLEET_MQTT__PORT")
    monkeypatch.setenv("FLEET_PLATFORM_PRIVATE_KEY", "c2hvcnQ=")
    with pytest.raises(SettingsError, match=r"FLEET_PLATFORM_PRIVATE_KEY"):
        load_settings()
    monkeypatch.delenv("FLEET_PLATFORM_PRIVATE_KEY")
    monkeypatch.setenv("FLEET_CONSOLE__HOST", "0.0.0.0")
    with pytest.raises(SettingsError, match=r"loopback"):
        load_settings()


def test_settings_come_from_the_environment(monkeypatch, tmp_path) -> None:
    private = new_private_key()
    key_file = tmp_path / "platform.key"
    key_file.write_text(base64.b64encode(private).decode() + "\n")
    monkeypatch.setenv("FLEET_DATABASE_URL", "postgresql+psycopg://fleet@127.0.0.1:5433/fleet")
    monkeypatch.setenv("FLEET_MQTT__HOST", "127.0.0.2")
    monkeypatch.setenv("FLEET_MQTT__USERNAME", "ingest")
    monkeypatch.setenv("FLEET_PLATFORM_PRIVATE_KEY_FILE", str(key_file))
    settings = load_settings()
    assert settings.mqtt.host == "127.0.0.2" and settings.mqtt.username == "ingest"
    assert settings.database_url.endswith(":5433/fleet")
    assert settings.private_key_bytes() == private


def test_a_failing_notifier_does_not_stop_ingest(pg, keys) -> None:
    import json

    from fleet.messages import parse
    from fleet.store import IngestStore
    from tests.support.fleet import NOW

    class ProviderDown:
        def notify(self, notification: Notification) -> None:
            raise TimeoutError("sms gateway unreachable")

    private, public = keys
    message_id = str(uuid.uuid4())
    body = {"message_id": message_id, "seq": 1, "type": "parcel.deposited", "ts": "2026-11-30T00:00:00Z",
            "site_id": "s1", "device_id": "k1",
            "data": {"compartment": 1, "parcel_id": "p-1", "secret": seal(public, message_id, {"pickup_code": "1234"})}}
    with capture_logs() as logs:
        result = IngestStore(private_key=private, notifier=ProviderDown(), now=lambda: NOW).write_batch(
            pg, [parse("edge/v1/s1/k1/evt/parcel.deposited", json.dumps(body).encode())])
    assert (result.stored, result.notified) == (1, 0)
    assert any(entry["event"] == "notify_failed" and entry["message_id"] == message_id for entry in logs)
    assert "1234" not in repr(logs)
