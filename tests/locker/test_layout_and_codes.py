"""Compartment numbering (default and configured) on the real bus, and pickup-code shape."""
from __future__ import annotations

import pytest

from edge.locker.codes import PickupCodes, normalise_code
from tests.support.station import start_deposit

pytestmark = pytest.mark.timeout(60)


def test_default_numbering_is_board_then_lock(controller):
    locker = controller.services.locker
    where = {n: (locker.compartment_location(n).board, locker.compartment_location(n).lock) for n in (1, 16, 17, 32)}
    assert where == {1: (0, 0), 16: (0, 15), 17: (1, 0), 32: (1, 15)}


@pytest.mark.parametrize("locker_overrides", [{"compartments": [
    {"number": 1, "board": 1, "lock": 3, "size": "L"},
    {"number": 2, "board": 0, "lock": 0, "size": "S"},
]}])
def test_configured_layout_decides_which_lock_opens(controller, client, courier, sim):
    assert [c["number"] for c in client.get("/api/locker/compartments").json["compartments"]] == [1, 2]
    deposit = start_deposit(client, courier, size="L")
    assert deposit["compartment"] == 1
    assert sim.is_open(1, 3) and not sim.is_open(0, 0)
    unlock = [f.data for f in sim.frames_received if f.data[2] == 0x31]
    assert unlock == [bytes.fromhex("02 13 31 03 49")]


def test_code_shape_and_hmac():
    codes = PickupCodes(b"k" * 32)
    fresh = {codes.new_code() for _ in range(200)}
    assert all(len(c) == 8 and c.isdigit() for c in fresh) and len(fresh) > 190
    assert normalise_code(" 1234 5678 ") == "12345678"
    assert normalise_code("1234567") is None and normalise_code("1234567a") is None and normalise_code("") is None
    assert codes.digest("12345678") != PickupCodes(b"j" * 32).digest("12345678")
    with pytest.raises(ValueError):
        PickupCodes(b"short")
