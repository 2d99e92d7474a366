"""`edge run --simulate` with no serial URL: an in-process simulator on a PTY, the demo hand
(items put in on deposit, taken out on pickup) and the /api/sim controls."""
from __future__ import annotations

import pytest

from edge.app import build_controller
from edge.kiosk_ui import create_app
from edge.settings import load_settings
from tests.support.station import api_client, outbox, wait_until
from tests.support.platform import revealed

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def simulated(tmp_path, fake_clock):
    settings = load_settings(data_dir=tmp_path / "data", simulate=True, http={"port": 0},
                             locker={"poll_interval_s": 0.02, "reply_timeout_s": 0.05})
    controller = build_controller(settings, clock=fake_clock)
    controller.start()
    yield controller
    controller.stop()


def test_every_flow_works_with_no_hardware(simulated):
    client = api_client(simulated)
    token = client.post("/api/locker/courier/login", json={"code": "000000"}).json["token"]
    courier = {"Authorization": f"Bearer {token}"}
    deposit = client.post("/api/locker/deposits", headers=courier,
                          json={"waybill": "DEMO1", "phone": "13800000000", "size": "S"}).json
    number = deposit["compartment"]
    state = client.get("/api/sim/lockboard/state").json["boards"]
    assert f"open {number - 1}" in state[0]
    assert client.post("/api/sim/lockboard/door", json={"compartment": number, "action": "close"}).json["ok"]
    [deposited] = wait_until(lambda: outbox(simulated.db, "parcel.deposited"), what="deposited")

    pickup = client.post("/api/locker/pickup", json={"code": revealed(deposited)["pickup_code"]}).json
    wait_until(lambda: client.get(f"/api/locker/pickups/{pickup['pickup_id']}").json["state"] == "collected",
               what="collected (the demo hand empties the compartment)")


def test_simulator_controls_refuse_bad_input(simulated):
    client = api_client(simulated)
    assert client.post("/api/sim/lockboard/door", json={"compartment": 99, "action": "close"}).status_code == 404
    assert client.post("/api/sim/lockboard/door", json={"compartment": 1, "action": "kick"}).status_code == 400
    assert client.post("/api/sim/lockboard/item", json={"compartment": "1"}).status_code == 400
    assert client.post("/api/sim/lockboard/offline", json={"board": 7}).status_code == 400
    assert client.post("/api/sim/lockboard/jam", json={"compartment": 2}).json["ok"]


def test_simulator_controls_exist_only_in_simulate_mode(controller, client):
    assert client.post("/api/sim/lockboard/door", json={"compartment": 1, "action": "close"}).status_code == 404
    assert client.get("/api/locker/compartments").status_code == 200


def test_no_serial_url_and_no_simulate_means_no_locker(tmp_path):
    controller = build_controller(load_settings(data_dir=tmp_path / "data", http={"port": 0}))
    try:
        assert controller.services.locker is None
        reply = create_app(controller).test_client().get("/api/locker/compartments")
        assert reply.status_code == 503 and reply.json["error"]["code"] == "no_locker"
    finally:
        controller.stop()
