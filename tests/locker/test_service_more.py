"""Service calls the kiosk screens and the cloud bridge make in-process, against the PTY
simulator: resident pickup by identity, remote opening, abandoned deposits, subscribers."""
from __future__ import annotations

import pytest

from edge.locker.errors import CoolingDown, NotFound, WrongCode
from edge.locker.monitor import LockerJobs
from edge.community.models import ResidentRow
from edge.community.residents import phone_hash
from tests.support.station import PHONE, audits, deposit_parcel, outbox, start_deposit, wait_until

pytestmark = pytest.mark.timeout(60)


def test_identified_resident_gets_every_parcel_door_opened(controller, client, courier, sim):
    locker = controller.services.locker
    first, one = deposit_parcel(controller, client, courier, sim, size="S")
    second, two = deposit_parcel(controller, client, courier, sim, size="M")
    assert locker.pickups_for_resident("r-1") == []  # r-1 not synced yet: nothing opens
    with controller.db.write() as s:  # what the platform's resident sync writes
        s.add(ResidentRow(resident_id="r-1", name_masked="Z*", phone_masked="138****5678",
                          phone_hash=phone_hash(controller.settings.mqtt.site_id, PHONE)))
    views = locker.pickups_for_resident("r-1")
    assert sorted(v.compartment for v in views) == sorted([one["compartment"], two["compartment"]])
    assert sim.is_open(first.board, first.lock) and sim.is_open(second.board, second.lock)
    assert {a.actor_id for a in audits(controller.db, "door_open") if a.actor == "resident"} == {"r-1"}
    assert locker.pickups_for_resident("someone-else") == []


def test_remote_open_is_audited_and_changes_no_parcel(controller, client, courier, sim):
    locker = controller.services.locker
    spec, stored = deposit_parcel(controller, client, courier, sim)
    result = locker.open_remote(stored["compartment"], "ops-zhang", "resident locked out")
    assert result["opened"] is True and sim.is_open(spec.board, spec.lock)
    opening = audits(controller.db, "door_open")[-1]
    assert (opening.actor, opening.actor_id, opening.detail["reason"]) == ("remote", "ops-zhang", "resident locked out")
    assert outbox(controller.db, "door.opened")[-1].data["operator"] == "ops-zhang"
    assert client.get("/api/locker/compartments").json["compartments"][stored["compartment"] - 1]["parcel"]["state"] == "stored"
    with pytest.raises(NotFound):
        locker.open_remote(99, "ops-zhang", "typo")


def test_deposit_closed_empty_and_abandoned_is_cancelled_by_the_minute_job(controller, client, courier, sim, fake_clock):
    deposit = start_deposit(client, courier)
    spec = controller.services.locker.compartment_location(deposit["compartment"])
    sim.close_door(spec.board, spec.lock)
    wait_until(lambda: controller.services.locker.deposit_status(deposit["deposit_id"]).state == "empty_closed",
               what="empty_closed")
    jobs = LockerJobs(controller.services.locker)
    jobs.run_once()
    assert controller.services.locker.deposit_status(deposit["deposit_id"]).state == "empty_closed"
    fake_clock.advance(seconds=301)
    jobs.run_once()
    assert controller.services.locker.deposit_status(deposit["deposit_id"]).state == "cancelled"
    assert audits(controller.db, "deposit_cancel")[-1].result == "timeout"


def test_subscribers_hear_changes_after_commit_without_the_code(controller, client, courier, sim):
    heard = []
    controller.services.locker.subscribe(lambda kind, data: heard.append((kind, data)))
    controller.services.locker.subscribe(lambda kind, data: 1 / 0)  # a broken listener harms nothing
    _, stored = deposit_parcel(controller, client, courier, sim)
    wait_until(lambda: any(kind == "parcel.deposited" for kind, _ in heard), what="notified")  # after commit
    kinds = [kind for kind, _ in heard]
    assert kinds[:3] == ["door.opened", "door.closed", "parcel.deposited"]
    [(_, data)] = [h for h in heard if h[0] == "parcel.deposited"]
    assert data["secret"] == "[redacted]" and data["parcel_id"] == stored["parcel_id"]
    assert stored["pickup_code"] not in str(heard)


def test_screen_and_api_share_one_wrong_code_limit(controller, client, courier, sim):
    locker = controller.services.locker
    kiosk = controller.settings.mqtt.device_id
    for left in (4, 3):
        with pytest.raises(WrongCode) as wrong:
            locker.pickup_with_code("87654321", kiosk_id=kiosk)
        assert wrong.value.attempts_left == left
    assert client.post("/api/locker/pickup", json={"code": "87654321"}).json["error"]["attempts_left"] == 2
    with pytest.raises(WrongCode):
        locker.pickup_with_code("87654321", kiosk_id=kiosk)
    assert client.post("/api/locker/pickup", json={"code": "87654321"}).status_code == 429
    with pytest.raises(CoolingDown):
        locker.pickup_with_code("87654321", kiosk_id=kiosk)
    with pytest.raises(WrongCode):  # another kiosk is not cooling down
        locker.pickup_with_code("87654321", kiosk_id="kiosk-02")


def test_a_full_outbox_refuses_new_door_work_before_any_door_opens(controller, client, courier, sim):
    from edge.storage import outbox as outbox_module

    with controller.db.write() as s:
        rows, size = outbox_module.pending(s)
        outbox_module.set_budget(s, max_rows=rows, max_bytes=10 ** 9)
    reply = client.post("/api/locker/deposits", headers=courier,
                        json={"waybill": "SF1", "phone": PHONE, "size": "M"})
    assert reply.status_code == 503 and reply.json["error"]["code"] == "storage_full"
    remote = client.post("/api/diag/open", json={"compartment": 3})
    assert remote.status_code == 503 and remote.json["error"]["code"] == "storage_full"
    assert not any(f.data[2] == 0x31 for f in sim.frames_received)
    with controller.db.write() as s:
        outbox_module.set_budget(s, max_rows=10 ** 6, max_bytes=10 ** 9)
    assert start_deposit(client, courier)["state"] == "door_open"
    seqs = [e.seq for e in outbox(controller.db)]
    assert seqs == list(range(1, len(seqs) + 1))  # the refused probes used up no seq


def test_thresholds_changed_at_run_time_apply_at_once(controller, sim, fake_clock):
    """config.set (cloud bridge) changes settings in place; the service reads them live."""
    controller.settings.locker.door_left_open_s = 5
    sim.open_door(0, 9)
    wait_until(lambda: outbox(controller.db, "door.opened"), what="door.opened")
    fake_clock.advance(seconds=6)
    [event] = wait_until(lambda: outbox(controller.db, "door.left_open"), what="door.left_open")
    assert event.data["compartment"] == 10
