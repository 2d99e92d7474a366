"""The iris pickup screen and the QR scan path in Chromium: browser -> Flask -> iris service
or scanner (simulated cameras, real decoding and matching) -> locker -> PTY lock board."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from simulators.camera import SimulatedCamera
from simulators.people import synthetic_person
from tests.support.browser import assert_accessible, shoot
from tests.support.station import COURIER_ID, Station, wait_until
from tests.support.platform import revealed

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
RESIDENT = ("res-1001", "13800138000")  # demo residents, synced in simulate mode
OTHER = ("res-1002", "13912345678")
# The button's capture reads 16 simulated frames (the live-eye check), each rendered on a
# shared 2-core box where the page's live guidance (ADR 0144) also ran until the click.
CAPTURE_MS = 30_000


def deposit(kiosk: Station, phone: str) -> dict:
    locker = kiosk.services.locker
    view = locker.start_deposit(COURIER_ID, f"SF{phone}", phone, "M")
    board, lock = kiosk.door(view.compartment)
    kiosk.sim.set_item(board, lock, True)
    kiosk.sim.close_door(board, lock)
    return wait_until(lambda: [revealed(e) for e in kiosk.outbox("parcel.deposited")
                               if e.data["deposit_id"] == view.deposit_id], what="deposited")[0]


def test_iris_pickup_screen_opens_the_residents_door(page, kiosk: Station) -> None:
    mine, theirs = deposit(kiosk, RESIDENT[1]), deposit(kiosk, OTHER[1])
    camera = SimulatedCamera(fps=None)
    camera.show_eye(synthetic_person(RESIDENT[0]))
    kiosk.services.iris.enrol(RESIDENT[0], [camera.read() for _ in range(4)], consent=True,
                                recorded_how="test", assurance="high")

    page.goto("/pickup/")
    page.get_by_role("button", name="English").click()
    page.get_by_role("link", name="Collect with your eye").click()
    expect(page.get_by_role("heading", name="Look into the camera")).to_be_visible()
    assert_accessible(page)
    shoot(page, "iris-pickup-en")
    page.get_by_label("Simulation: who is at the camera").select_option(RESIDENT[0])
    page.get_by_role("button", name="I am looking at the camera").click(timeout=CAPTURE_MS)

    expect(page.locator("[data-live-when='state=door_open'] .door-number")).to_have_text(
        str(mine["compartment"]))
    assert kiosk.sim.is_open(*kiosk.door(mine["compartment"]))
    assert not kiosk.sim.is_open(*kiosk.door(theirs["compartment"]))


def test_a_stranger_at_the_iris_camera_is_sent_to_the_code(page, kiosk: Station) -> None:
    camera = SimulatedCamera(fps=None)
    camera.show_eye(synthetic_person(RESIDENT[0]))
    kiosk.services.iris.enrol(RESIDENT[0], [camera.read() for _ in range(4)], consent=True,
                                recorded_how="test", assurance="high")
    page.goto("/iris/pickup")
    page.get_by_label("模拟：谁在摄像头前").select_option("stranger")
    page.get_by_role("button", name="我正看着摄像头").click(timeout=CAPTURE_MS)
    expect(page.get_by_role("alert")).to_contain_text("没有认出您")
    assert re.search(r"/pickup/$", page.url)


def test_a_pickup_qr_held_to_the_camera_opens_the_door_by_itself(page, kiosk: Station) -> None:
    parcel = deposit(kiosk, OTHER[1])
    page.goto("/pickup/")
    expect(page.get_by_role("heading", name="扫描二维码")).to_be_visible()
    wait_until(lambda: kiosk.services.qr_scanner.scanning, what="the page's scan stream")

    kiosk.controller.simulation.qr_camera.show_qr(parcel["pickup_token"])

    expect(page.locator("[data-live-when='state=door_open'] .door-number")).to_have_text(
        str(parcel["compartment"]), timeout=20_000)
    assert kiosk.sim.is_open(*kiosk.door(parcel["compartment"]))


def test_simulate_mode_pasted_code_is_read_through_the_camera(page, kiosk: Station) -> None:
    parcel = deposit(kiosk, RESIDENT[1])
    before = kiosk.controller.simulation.qr_camera.frames_read
    page.goto("/pickup/")
    page.get_by_label("模拟模式：粘贴二维码内容").fill(parcel["pickup_token"])
    page.get_by_role("button", name="使用此码").click()

    expect(page.locator("[data-live-when='state=door_open'] .door-number")).to_have_text(
        str(parcel["compartment"]), timeout=20_000)
    assert kiosk.controller.simulation.qr_camera.frames_read > before  # read by the scanner, not posted
