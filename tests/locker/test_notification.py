"""parcel.deposited carries what the cloud needs for the resident's notice: the station's name
and address, the compartment, and the end of the free storage period (per site, default 24 h,
separate from the overdue retention) - and never the code in clear."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from cloud_bridge import contract
from edge.clock import iso_utc
from tests.support.station import deposit_parcel, locker_settings, outbox
from tests.support.platform import revealed

pytestmark = pytest.mark.timeout(90)
ADDRESS = "深圳市大鹏新区南澳街道南渔路 18 号"


@pytest.fixture
def locker_overrides():
    return {"free_storage_hours": 48}


@pytest.fixture
def station_overrides():
    return {"site": {"station_name": "南澳社区服务站", "address": ADDRESS}}


def test_the_deposited_event_names_the_place_the_door_and_the_free_period(controller, client, courier, sim,
                                                                           fake_clock):
    deposited_at = fake_clock.now()
    spec, opened = deposit_parcel(controller, client, courier, sim)
    [event] = outbox(controller.db, "parcel.deposited")
    data = event.data
    assert data["station"] == {"name": "南澳社区服务站", "address": ADDRESS}
    assert data["compartment"] == spec.number
    free_until = datetime.fromisoformat(data["free_until"].replace("Z", "+00:00"))
    assert free_until == deposited_at + timedelta(hours=48)
    assert data["due_at"] != data["free_until"]  # retention (72 h) is another period
    # the code only sealed: not in the event's clear fields, opened only with the platform key
    assert opened["pickup_code"] not in str({k: v for k, v in data.items() if k != "secret"})
    assert "pickup_code" not in data and "pickup_token" not in data
    envelope = {"message_id": event.message_id, "seq": event.seq, "type": event.type, "ts": iso_utc(event.ts),
                "site_id": "s", "device_id": "d", "data": data}
    assert contract.errors("evt.parcel.deposited", envelope) == []
    assert revealed(event)["pickup_code"] == opened["pickup_code"]


def test_the_free_period_is_24_hours_by_default(tmp_path):
    assert locker_settings(tmp_path, "loop://").locker.free_storage_hours == 24
