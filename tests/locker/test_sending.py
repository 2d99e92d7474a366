"""Sending (寄件) end to end through the HTTP API and the KR-CU16 driver: a send code opens a
free door, the parcel goes in, the door closes (parcel.send_deposited); a courier of that
company takes it out (parcel.send_collected); refused while the locker camera gives no picture.
A door that does not open on a send: test_send_retry.py."""
from __future__ import annotations

import pytest

from cloud_bridge import contract
from edge.clock import iso_utc
from simulators.camera import SimulatedCamera
from tests.support.station import audits, outbox, wait_until

pytestmark = pytest.mark.timeout(90)
COMPANIES = {"sf": "顺丰速运", "yt": "圆通速递"}


@pytest.fixture
def locker_overrides():
    return {"send_companies": COMPANIES,
            "couriers": {"246810": {"id": "courier-7", "company": "sf"},
                         "135790": {"id": "courier-9", "company": "yt"}}}


@pytest.fixture
def camera(controller):
    """The simulated camera covering the locker, as the station camera's source."""
    source = SimulatedCamera((320, 240), fps=None)
    controller.services.station_camera.source = source
    return source


def send(client, **body):
    return client.post("/api/locker/sends", json={"company": "sf", "size": "S", "send_code": "SF8K2Q7", **body})


def envelope(event):
    return {"message_id": event.message_id, "seq": event.seq, "type": event.type, "ts": iso_utc(event.ts),
            "site_id": "s", "device_id": "d", "data": event.data}


def test_send_then_collected_by_a_courier_of_that_company(controller, client, courier, sim, camera):
    reply = send(client)
    assert reply.status_code == 201, reply.json
    sent = reply.json
    assert sent["state"] == "door_open"
    spec = controller.services.locker.compartment_location(sent["compartment"])
    assert sim.is_open(spec.board, spec.lock)
    sim.set_item(spec.board, spec.lock, True)
    sim.close_door(spec.board, spec.lock)
    [deposited] = wait_until(lambda: outbox(controller.db, "parcel.send_deposited"), what="send deposited")
    assert deposited.data["company"] == "sf" and deposited.data["by"] == "code"
    assert contract.errors("evt.parcel.send_deposited", envelope(deposited)) == []
    assert "SF8K2Q7" not in str(outbox(controller.db)) + str([a.detail for a in audits(controller.db)])
    entry = client.get("/api/locker/compartments").json["compartments"][spec.number - 1]
    assert entry["state"] == "send"

    other = client.post("/api/locker/courier/login", json={"code": "135790"}).json
    other = {"Authorization": f"Bearer {other['token']}"}
    assert client.get("/api/locker/outgoing", headers=other).json["parcels"] == []
    assert client.post(f"/api/locker/outgoing/{sent['send_id']}/collect", headers=other).status_code == 404
    [waiting] = client.get("/api/locker/outgoing", headers=courier).json["parcels"]
    assert waiting["send_id"] == sent["send_id"]
    taken = client.post(f"/api/locker/outgoing/{sent['send_id']}/collect", headers=courier)
    assert taken.status_code == 200 and taken.json["state"] == "collect_open", taken.json
    sim.set_item(spec.board, spec.lock, False)
    sim.close_door(spec.board, spec.lock)
    [collected] = wait_until(lambda: outbox(controller.db, "parcel.send_collected"), what="send collected")
    assert collected.data["courier_id"] == "courier-7"
    assert contract.errors("evt.parcel.send_collected", envelope(collected)) == []
    assert client.get(f"/api/locker/sends/{sent['send_id']}").json["state"] == "collected"
    assert client.get("/api/locker/compartments").json["compartments"][spec.number - 1]["state"] == "free"


def test_send_outs_are_refused_while_the_camera_gives_no_picture(controller, client, sim, camera):
    camera.fail()
    refused = send(client)
    assert refused.status_code == 503 and refused.json["error"]["code"] == "camera_unhealthy"
    assert "no picture" in refused.json["error"]["message"]
    assert not any(f.data[2] == 0x31 for f in sim.frames_received)  # no door opened
    [audit] = [a for a in audits(controller.db, "send") if a.result == "refused_camera"]
    assert audit.detail["camera"] == "no picture"
    camera.fail(False)
    assert send(client).status_code == 201


def test_without_a_camera_sending_stays_closed(controller, client, sim):
    refused = send(client)
    assert refused.status_code == 503 and refused.json["error"]["code"] == "camera_unhealthy"
    assert not any(f.data[2] == 0x31 for f in sim.frames_received)


@pytest.mark.parametrize("body,code", [({"send_code": "12"}, "bad_send_code"),
                                       ({"send_code": "寄件码1234"}, "bad_send_code"),
                                       ({"company": "ems"}, "unknown_company"),
                                       ({"size": "XL"}, "bad_size")])
def test_bad_send_requests_are_refused_plainly(controller, client, sim, camera, body, code):
    reply = send(client, **body)
    assert reply.status_code == 400 and reply.json["error"]["code"] == code, reply.json
    assert not any(f.data[2] == 0x31 for f in sim.frames_received)


def test_the_kiosk_send_screens_in_chinese(controller, client, sim, camera):
    import re

    from edge.kiosk_ui import create_app

    app = create_app(controller)
    kiosk = app.test_client()
    csrf = re.search(r'data-csrf="([^"]+)"', kiosk.get("/").get_data(as_text=True)).group(1)
    form = kiosk.get("/send/").get_data(as_text=True)
    assert "寄件" in form and "顺丰速运" in form and 'data-key="K"' in form
    letters = re.search(r'<div class="keypad letters" data-for="send_code".*?</div>', form, re.S).group(0)
    assert 'data-key="K"' in letters and 'data-key="-"' not in letters  # send codes: letters and digits
    camera.fail()
    closed = kiosk.post("/send/", data={"company": "sf", "size": "S", "send_code": "SF8K2Q7", "csrf_token": csrf},
                        follow_redirects=True).get_data(as_text=True)
    assert "快递柜摄像头故障，暂停寄件" in closed
    camera.fail(False)
    opened = kiosk.post("/send/", data={"company": "sf", "size": "S", "send_code": "SF8K2Q7", "csrf_token": csrf})
    door = kiosk.get(opened.location).get_data(as_text=True)
    assert "请放入包裹并关好柜门。" in door
    number = int(re.search(r'class="door-number">(\d+)<', door).group(1))
    spec = controller.services.locker.compartment_location(number)
    sim.set_item(spec.board, spec.lock, True)
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: outbox(controller.db, "parcel.send_deposited"), what="send deposited")

    # the courier of that company takes it from the courier screen
    courier_screen = app.test_client()
    csrf = re.search(r'data-csrf="([^"]+)"', courier_screen.get("/").get_data(as_text=True)).group(1)
    courier_screen.post("/courier/", data={"courier_code": "246810", "csrf_token": csrf})
    listing = courier_screen.get("/courier/outgoing").get_data(as_text=True)
    send_id = re.search(r'/courier/outgoing/(snd-[0-9a-f]+)', listing).group(1)
    taken = courier_screen.post(f"/courier/outgoing/{send_id}", data={"csrf_token": csrf},
                                follow_redirects=True).get_data(as_text=True)
    assert f"{number} 号柜门已打开" in taken and sim.is_open(spec.board, spec.lock)


def test_an_identified_resident_sends_without_a_code(controller, client, sim, camera):
    view = controller.services.locker.start_send("yt", "M", resident_id="r-42")
    spec = controller.services.locker.compartment_location(view.compartment)
    assert view.state == "door_open" and sim.is_open(spec.board, spec.lock)
    sim.set_item(spec.board, spec.lock, True)
    sim.close_door(spec.board, spec.lock)
    [deposited] = wait_until(lambda: outbox(controller.db, "parcel.send_deposited"), what="send deposited")
    assert deposited.data["by"] == "resident" and deposited.data["company"] == "yt"
    [row] = [a for a in audits(controller.db, "send") if a.result == "deposited"]
    assert row.actor_id == "resident:r-42"
    # the empty door of a send closed without a parcel cancels it and frees the compartment
    empty = controller.services.locker.start_send("yt", "M", resident_id="r-42")
    other = controller.services.locker.compartment_location(empty.compartment)
    sim.close_door(other.board, other.lock)
    wait_until(lambda: client.get(f"/api/locker/sends/{empty.send_id}").json["state"] == "cancelled",
               what="cancelled")
