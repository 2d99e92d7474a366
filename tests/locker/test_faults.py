"""Door left open (event + buzzer on a MockFactory pin), a board going offline (unknown,
never closed) and reconcile after a restart, against the PTY simulator."""
from __future__ import annotations

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from edge.app import build_controller
from edge.locker.models import Deposit, DoorOperation
from tests.support.station import api_client, audits, deposit_parcel, locker_settings, outbox, start_deposit, wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def mock_pins():
    previous = Device.pin_factory
    Device.pin_factory = MockFactory()
    yield Device.pin_factory
    Device.pin_factory.reset()
    Device.pin_factory = previous


def test_door_left_open_raises_event_and_sounds_buzzer_until_closed(tmp_path, sim, fake_clock, mock_pins):
    settings = locker_settings(tmp_path / "data", sim.url, door_left_open_s=60)
    settings.gpio.enabled = True  # gpiozero's default factory: the MockFactory installed above
    controller = build_controller(settings, clock=fake_clock)
    controller.start()
    try:
        buzzer = mock_pins.pin(settings.gpio.buzzer_pin)
        sim.open_door(0, 2)  # forced open, no command
        wait_until(lambda: outbox(controller.db, "door.opened"), what="door.opened")
        assert outbox(controller.db, "door.opened")[0].data["reason"] == "unexpected"
        assert audits(controller.db, "door_opened_without_command")
        fake_clock.advance(seconds=59)
        assert not buzzer.state and outbox(controller.db, "door.left_open") == []
        fake_clock.advance(seconds=2)
        [left_open] = wait_until(lambda: outbox(controller.db, "door.left_open"), what="door.left_open")
        assert left_open.data["compartment"] == 3
        wait_until(lambda: any(s.state for s in buzzer.states), what="buzzer on")
        fake_clock.advance(seconds=120)
        sim.close_door(0, 2)
        wait_until(lambda: outbox(controller.db, "door.closed"), what="door.closed")
        wait_until(lambda: not buzzer.state, what="buzzer off")
        assert len(outbox(controller.db, "door.left_open")) == 1  # once per opening
    finally:
        controller.stop()


def test_a_restart_with_a_door_still_left_open_sounds_the_buzzer_again(tmp_path, sim, fake_clock, mock_pins):
    settings = locker_settings(tmp_path / "data", sim.url, door_left_open_s=60)
    settings.gpio.enabled = True
    first = build_controller(settings, clock=fake_clock)
    first.start()
    try:
        sim.open_door(0, 2)
        wait_until(lambda: outbox(first.db, "door.opened"), what="door.opened")
        fake_clock.advance(seconds=61)
        wait_until(lambda: outbox(first.db, "door.left_open"), what="door.left_open")
    finally:
        first.stop()  # the power goes; the door is still hanging open

    buzzer = mock_pins.pin(settings.gpio.buzzer_pin)
    seen_before = len(buzzer.states)
    second = build_controller(settings, clock=fake_clock)
    # Checked before start(): once started, the door monitor's first pass may sound it at once.
    buzzer = mock_pins.pin(settings.gpio.buzzer_pin)
    assert not buzzer.state  # the old process's buzzer went with it
    second.start()
    try:
        fake_clock.advance(seconds=1)
        wait_until(lambda: buzzer.state, what="buzzer on after restart")
        # The new process starts its buzzer off (the old one's went with it) and sounds it
        # again; read from the pin's history, since its first poll may come at any moment.
        assert [s.state for s in buzzer.states[seen_before:]][-2:] == [False, True]
        assert len(outbox(second.db, "door.left_open")) == 1  # the same opening, not a new alert
        sim.close_door(0, 2)
        wait_until(lambda: not buzzer.state, what="buzzer off")
    finally:
        second.stop()


def test_offline_board_reads_unknown_never_closed(controller, client, courier, sim):
    sim.set_offline(1)
    wait_until(lambda: client.get("/api/locker/compartments").json["compartments"][16]["state"] == "unknown",
               what="board 1 unknown")
    compartments = client.get("/api/locker/compartments").json["compartments"]
    assert {c["latch"] for c in compartments[16:]} == {"unknown"}
    assert {c["latch"] for c in compartments[:16]} == {"closed"}
    # deposits only go to compartments whose state is known
    for _ in range(4):
        assert start_deposit(client, courier, size="L")["compartment"] <= 16
    reply = client.post("/api/locker/deposits", headers=courier,
                        json={"waybill": "SF9", "phone": "13812345678", "size": "L"})
    assert reply.status_code == 409
    sim.set_offline(1, False)
    wait_until(lambda: client.get("/api/locker/compartments").json["compartments"][16]["latch"] == "closed",
               what="board 1 back")
    # no door event came from the board going silent and back
    assert {e.data["compartment"] for e in outbox(controller.db, "door.opened")} <= set(range(1, 17))


def test_reconcile_after_restart_completes_what_happened_while_down(tmp_path, sim, fake_clock):
    settings = locker_settings(tmp_path / "data", sim.url)
    controller = build_controller(settings, clock=fake_clock)
    controller.start()

    client = api_client(controller)
    courier = {"Authorization": "Bearer " + client.post(
        "/api/locker/courier/login", json={"code": "246810"}).json["token"]}
    deposit = start_deposit(client, courier, size="M")  # door open when the power goes
    empty = start_deposit(client, courier, size="S")  # will be closed empty while down
    _, stored = deposit_parcel(controller, client, courier, sim, size="L")
    vanished_spec, vanished = deposit_parcel(controller, client, courier, sim, size="L")
    picked = client.post("/api/locker/pickup", json={"code": stored["pickup_code"]}).json
    controller.stop()

    locker = settings.locker
    spec = {n: locker.layout()[n - 1] for n in (deposit["compartment"], empty["compartment"], stored["compartment"])}
    d, e, p = spec[deposit["compartment"]], spec[empty["compartment"]], spec[stored["compartment"]]
    sim.set_item(d.board, d.lock, True)
    sim.close_door(d.board, d.lock)
    sim.close_door(e.board, e.lock)
    sim.set_item(p.board, p.lock, False)
    sim.close_door(p.board, p.lock)
    sim.set_item(vanished_spec.board, vanished_spec.lock, False)  # taken out by force
    sim.open_door(1, 15)  # someone forced compartment 32 while the controller was down
    sim.set_offline(1)

    restarted = build_controller(settings, clock=fake_clock)
    restarted.start()
    try:
        with restarted.db.read() as s:
            assert s.get(Deposit, deposit["deposit_id"]).state == "deposited"
            assert s.get(Deposit, empty["deposit_id"]).state == "cancelled"
            assert s.get(DoorOperation, picked["pickup_id"]).state == "collected"
        [reconciled] = outbox(restarted.db, "locker.reconciled")
        kinds = {(f["finding"], f.get("compartment", f.get("board"))) for f in reconciled.data["findings"]}
        assert ("board_unreachable", 1) in kinds
        assert ("door_closed", deposit["compartment"]) in kinds
        assert ("deposit_after_restart", empty["compartment"]) in kinds
        assert ("pickup_after_restart", stored["compartment"]) in kinds
        assert ("item_missing", vanished["compartment"]) in kinds
        assert audits(restarted.db, "item_missing")[0].target == vanished["parcel_id"]
        assert not any(f.get("compartment") == 32 for f in reconciled.data["findings"])  # unknown, not judged
        closed = [ev for ev in outbox(restarted.db, "door.closed") if ev.data.get("reason") == "found_at_start"]
        assert {ev.data["compartment"] for ev in closed} == set(spec)
        seqs = [ev.seq for ev in outbox(restarted.db)]
        assert seqs == list(range(1, len(seqs) + 1))
        assert audits(restarted.db, "reconcile")[-1].result == "changes"
        snapshot = restarted.services.locker.snapshot()
        assert snapshot[31]["latch"] == "unknown"
    finally:
        restarted.stop()
