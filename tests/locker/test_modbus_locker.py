"""The locker end to end on the second lock-board family: the real controller wiring
(build_controller, Flask app, Modbus driver) against the Modbus RTU bus simulator on a PTY,
through the HTTP API. The harness is tests/locker/conftest.py; locker_overrides pick Modbus."""
from __future__ import annotations

from typing import Any

import pytest

from tests.support.station import api_client, audits, deposit_parcel, outbox, pickup_state, start_deposit, wait_until
from tests.support.platform import revealed

pytestmark = pytest.mark.timeout(60)
WRITE_COIL = 0x05


@pytest.fixture
def locker_overrides() -> dict[str, Any]:
    return {"protocol": "modbus", "modbus_pulse_s": 0.02, "modbus_units": [5, 6]}


def coil_pulses(sim, unit: int, lock: int) -> list[int]:
    """0xFF for each coil-on, 0x00 for each coil-off the simulator received for one lock."""
    return [f[4] for f in sim.frames_of(WRITE_COIL) if f[0] == unit and f[3] == lock]


def test_deposit_and_pickup_by_code_through_the_http_api(controller, client, courier, sim):
    spec, deposited = deposit_parcel(controller, client, courier, sim)
    unit = 5 + spec.board
    assert coil_pulses(sim, unit, spec.lock) == [0xFF, 0x00]  # the deposit door: one pulse, coil off
    assert deposited["pickup_code"] and not sim.is_open(spec.board, spec.lock)

    reply = client.post("/api/locker/pickup", json={"code": deposited["pickup_code"]})

    assert reply.status_code == 200, reply.json
    assert reply.json["compartment"] == deposited["compartment"] and reply.json["state"] == "door_open"
    assert sim.is_open(spec.board, spec.lock) and not sim.coil_on(spec.board, spec.lock)
    assert coil_pulses(sim, unit, spec.lock) == [0xFF, 0x00] * 2
    sim.set_item(spec.board, spec.lock, False)
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: pickup_state(client, reply.json["pickup_id"]) == "collected", what="collected")
    [collected] = outbox(controller.db, "parcel.collected")
    assert collected.data["parcel_id"] == deposited["parcel_id"]
    opened = [e.data["reason"] for e in outbox(controller.db, "door.opened")]
    assert opened == ["deposit", "pickup"]


def test_a_jammed_lock_is_flagged_and_the_deposit_moves_on(controller, client, courier, sim):
    sim.jam(0, 6)  # compartment 7: the first free M compartment

    deposit = start_deposit(client, courier, size="M")

    assert deposit["compartment"] == 8 and sim.is_open(0, 7) and not sim.is_open(0, 6)
    [fault] = outbox(controller.db, "door.fault")
    assert fault.data["compartment"] == 7 and fault.data["attempts"] == 2
    assert coil_pulses(sim, 5, 6) == [0xFF, 0x00, 0xFF, 0x00]  # one confirmed re-pulse, never left on
    failed = [a for a in audits(controller.db, "door_open") if a.result == "failed"]
    assert [a.target for a in failed] == ["compartment:7"]


def test_a_silent_modbus_board_reads_unknown_and_gets_no_deposits(controller, client, courier, sim):
    sim.set_offline(1)
    wait_until(lambda: client.get("/api/locker/compartments").json["compartments"][16]["state"] == "unknown",
               what="board 1 unknown")
    compartments = client.get("/api/locker/compartments").json["compartments"]
    assert {c["latch"] for c in compartments[16:]} == {"unknown"}
    assert {c["latch"] for c in compartments[:16]} == {"closed"}
    for _ in range(4):  # the four L compartments of board 0
        assert start_deposit(client, courier, size="L")["compartment"] <= 16
    refused = client.post("/api/locker/deposits", headers=courier,
                          json={"waybill": "SF9", "phone": "13812345678", "size": "L"})
    assert refused.status_code == 409
    sim.set_offline(1, False)
    wait_until(lambda: client.get("/api/locker/compartments").json["compartments"][16]["latch"] == "closed",
               what="board 1 back")


def test_crc_errors_on_the_line_do_not_stop_a_pickup(controller, client, courier, sim):
    spec, deposited = deposit_parcel(controller, client, courier, sim)
    sim.corrupt_replies(2)

    reply = client.post("/api/locker/pickup", json={"code": deposited["pickup_code"]})

    assert reply.status_code == 200, reply.json
    assert sim.is_open(spec.board, spec.lock) and not sim.coil_on(spec.board, spec.lock)


def test_simulate_mode_with_protocol_modbus_from_the_environment(tmp_path, fake_clock, monkeypatch):
    from edge.app import build_controller
    from edge.settings import load_settings
    from simulators.modbus_lockboard import ModbusLockBoardSimulator

    monkeypatch.setenv("EDGE_LOCKER__PROTOCOL", "modbus")
    monkeypatch.setenv("EDGE_LOCKER__MODBUS_PULSE_S", "0.02")
    settings = load_settings(data_dir=tmp_path / "data", simulate=True, http={"port": 0},
                             locker={"poll_interval_s": 0.02, "reply_timeout_s": 0.05})
    controller = build_controller(settings, clock=fake_clock)
    controller.start()
    try:
        simulator = controller.simulation.lockboard
        assert isinstance(simulator, ModbusLockBoardSimulator)
        client = api_client(controller)
        token = client.post("/api/locker/courier/login", json={"code": "000000"}).json["token"]
        deposit = client.post("/api/locker/deposits", headers={"Authorization": f"Bearer {token}"},
                              json={"waybill": "DEMO1", "phone": "13800000000", "size": "S"}).json
        number = deposit["compartment"]
        assert client.post("/api/sim/lockboard/door", json={"compartment": number, "action": "close"}).json["ok"]
        [deposited] = wait_until(lambda: outbox(controller.db, "parcel.deposited"), what="deposited")
        pickup = client.post("/api/locker/pickup", json={"code": revealed(deposited)["pickup_code"]}).json
        wait_until(lambda: client.get(f"/api/locker/pickups/{pickup['pickup_id']}").json["state"] == "collected",
                   what="collected (the demo hand empties the compartment)")
        assert len(simulator.frames_of(WRITE_COIL)) == 4  # two doors, each coil on then off
    finally:
        controller.stop()


def test_a_bad_protocol_setting_is_one_clear_error(tmp_path, monkeypatch):
    from edge.settings import SettingsError, load_settings

    monkeypatch.setenv("EDGE_LOCKER__PROTOCOL", "canbus")
    with pytest.raises(SettingsError, match="locker.protocol"):
        load_settings(data_dir=tmp_path / "data")
    monkeypatch.setenv("EDGE_LOCKER__PROTOCOL", "modbus")
    monkeypatch.setenv("EDGE_LOCKER__MODBUS_UNITS", "3")  # two boards, one unit id
    with pytest.raises(SettingsError, match="modbus_units"):
        load_settings(data_dir=tmp_path / "data")


def test_diag_bus_shows_the_modbus_line_counters(controller, client, sim):
    sim.corrupt_replies(1)
    sim.inject_garbage(b"\xfb\xfb")
    wait_until(lambda: controller.services.locker_diagnostics.bus()["line"]["crc_errors"] >= 1,
               what="the monitor's reads to meet the corrupt reply")

    scan = controller.services.locker_diagnostics.bus()

    assert scan["answering"] == [0, 1] and scan["missing"] == []
    assert scan["line"]["crc_errors"] == 1 and scan["line"]["stray_bytes"] >= 2 + 9
    assert scan["line"]["replies"] > 0
