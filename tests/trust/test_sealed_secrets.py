"""Pickup code and token leave the box once, sealed to the platform's X25519 key; nothing
on the box can give the code back afterwards (issue 9, item 2; MQTT contract "Sealed secrets")."""
from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from typer.testing import CliRunner

from edge.cli import app as cli
from edge.identity.sealing import SealError, public_key_text, seal, unseal
from edge.logs import configure_logging
from edge.settings import SettingsError, load_settings
from tests.support.station import audits, deposit_parcel, outbox, wait_until, station_settings
from tests.support.platform import PLATFORM_PRIVATE_KEY, opened_secret


def test_a_sealed_secret_opens_only_with_the_platform_key_and_its_message_id():
    platform = X25519PrivateKey.generate()
    sealed = seal(platform.public_key(), {"pickup_code": "12345678"}, "message-1")
    blob = base64.urlsafe_b64decode(sealed)
    assert len(blob) == 32 + 12 + len(b'{"pickup_code":"12345678"}') + 16  # epk, nonce, ciphertext, tag
    assert b"12345678" not in blob
    assert unseal(platform, sealed, "message-1") == {"pickup_code": "12345678"}
    with pytest.raises(SealError):
        unseal(platform, sealed, "message-2")  # moved into another message
    with pytest.raises(SealError):
        unseal(X25519PrivateKey.generate(), sealed, "message-1")  # someone else's key
    assert seal(platform.public_key(), {"a": 1}, "m") != seal(platform.public_key(), {"a": 1}, "m")


def test_the_deposit_leaves_no_clear_code_in_the_db_its_wal_or_the_log(controller, client, courier, sim, capfd):
    configure_logging("DEBUG")
    _, deposited = deposit_parcel(controller, client, courier, sim)
    [event] = outbox(controller.db, "parcel.deposited")
    assert "pickup_code" not in event.data and "pickup_token" not in event.data
    secret = opened_secret(event)  # the platform, holding its private key, can read it
    code, token = secret["pickup_code"], secret["pickup_token"]
    assert len(code) == 8 and token.startswith("P1.")

    files = [p for p in controller.settings.data_dir.rglob("*") if p.is_file()]
    assert any(p.name.endswith("-wal") for p in files)
    for path in files:
        raw = path.read_bytes()
        assert code.encode() not in raw and token.encode() not in raw, path
    logged = capfd.readouterr()
    assert code not in logged.out + logged.err and token not in logged.out + logged.err
    assert code not in str([(a.detail, a.target) for a in audits(controller.db)])
    # and the code the platform texted the resident opens the door
    assert client.post("/api/locker/pickup", json={"code": code}).status_code == 200


def test_a_broker_without_a_platform_key_stops_start_up_with_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGE_MQTT__PLATFORM_PUBLIC_KEY")
    with pytest.raises(SettingsError, match="mqtt.platform_public_key"):
        load_settings(data_dir=tmp_path, mqtt={"host": "127.0.0.1"})
    result = CliRunner().invoke(cli, ["run"], env={"EDGE_DATA_DIR": str(tmp_path),
                                                   "EDGE_MQTT__HOST": "127.0.0.1"})
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert "EDGE_MQTT__PLATFORM_PUBLIC_KEY" in line
    with pytest.raises(SettingsError, match="platform_public_key"):
        load_settings(data_dir=tmp_path, mqtt={"platform_public_key": "not-a-key"})


def test_without_a_platform_key_no_deposit_door_opens(tmp_path, sim, monkeypatch):
    from edge.app import build_controller
    from edge.locker.errors import NoPlatformKey

    monkeypatch.delenv("EDGE_MQTT__PLATFORM_PUBLIC_KEY")
    controller = build_controller(station_settings(tmp_path / "data", sim.url, mqtt={"platform_public_key": None}))
    try:
        with pytest.raises(NoPlatformKey):
            controller.services.locker.start_deposit("courier-7", "SF1", "13812345678", "M")
        assert not any(f.data[2] == 0x31 for f in sim.frames_received)  # no unlock frame
    finally:
        controller.stop()


def test_simulate_mode_seals_to_the_simulated_cloud_which_opens_it(tmp_path, monkeypatch, capfd):
    from edge.app import build_controller
    from simulators.cloud import CloudSimulator, simulated_platform_key
    
    monkeypatch.delenv("EDGE_MQTT__PLATFORM_PUBLIC_KEY")
    settings = load_settings(data_dir=tmp_path / "data", simulate=True, http={"port": 0})
    controller = build_controller(settings)
    controller.start()
    try:
        key = simulated_platform_key(settings.keys_dir)
        assert controller.settings.mqtt.platform_public_key == public_key_text(key.public_key())
        assert public_key_text(PLATFORM_PRIVATE_KEY.public_key()) != controller.settings.mqtt.platform_public_key
        [cloud] = [c for c in controller.components if isinstance(c, CloudSimulator)]
        locker, board_sim = controller.services.locker, controller.simulation.lockboard
        view = locker.start_deposit("demo-courier", "SF-DEMO", "13800138000", "S")
        spec = locker.compartment_location(view.compartment)
        board_sim.set_item(spec.board, spec.lock, True)
        board_sim.close_door(spec.board, spec.lock)
        parcel_id = wait_until(lambda: locker.deposit_status(view.deposit_id).parcel_id, timeout=15, what="stored")
        opened = wait_until(lambda: cloud.pickup_secrets.get(parcel_id), timeout=20, what="the cloud opened it")
        assert cloud.violations == []
        assert f"pickup code {opened['pickup_code']}" in capfd.readouterr().out  # the demo's "SMS"
        assert locker.pickup_with_code(opened["pickup_code"]).parcel_id == parcel_id
    finally:
        controller.stop()
