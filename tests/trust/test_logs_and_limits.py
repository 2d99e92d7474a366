"""Failure paths that used to print pickup codes (issue 9, item 3): a nearly full outbox with
door polls failing, and a JSON body nested 100k deep; the output is searched for the code.
Also: the room an opening needs is checked before a deposit door opens, near the budget too."""
from __future__ import annotations

import pytest

from edge.logs import configure_logging, redact
from edge.storage import outbox as outbox_module
from tests.support.station import PHONE, start_deposit, wait_until

KNOWN_CODE = "13572468"
KNOWN_PHONE = "13912345678"


def set_room(controller, rows: int) -> None:
    """Leave exactly `rows` rows of room in the outbox budget."""
    with controller.db.write() as s:
        pending_rows, _ = outbox_module.pending(s)
        outbox_module.set_budget(s, max_rows=pending_rows + rows, max_bytes=10 ** 9)


def unlock_frames(sim) -> int:
    return sum(1 for f in sim.frames_received if f.data[2] == 0x31)


def test_near_the_budget_a_deposit_door_stays_shut_without_room_for_its_events(controller, client, courier, sim):
    set_room(controller, 3)  # room for a door.opened, not for door.closed + parcel.deposited + ...
    reply = client.post("/api/locker/deposits", headers=courier,
                        json={"waybill": "SF1", "phone": PHONE, "size": "M"})
    assert reply.status_code == 503 and reply.json["error"]["code"] == "storage_full"
    assert unlock_frames(sim) == 0


def test_failing_door_polls_with_a_full_outbox_never_log_the_code(controller, client, courier, sim, capfd):
    configure_logging("DEBUG")
    locker = controller.services.locker
    locker._deposits._codes.new_code = lambda: KNOWN_CODE  # so the test knows what to search for
    deposit = start_deposit(client, courier)
    set_room(controller, 0)  # the parcel.deposited of this deposit cannot be written now
    spec = locker.compartment_location(deposit["compartment"])
    sim.set_item(spec.board, spec.lock, True)
    sim.close_door(spec.board, spec.lock)
    seen = []

    def polls_failed() -> bool:
        seen.append(capfd.readouterr())
        return sum(chunk.err.count("door_poll_failed") for chunk in seen) >= 3

    wait_until(polls_failed, timeout=10, what="three failed door polls")
    output = "".join(chunk.out + chunk.err for chunk in seen)
    assert "StorageFull" in output  # the failure is reported, as a plain traceback
    assert KNOWN_CODE not in output
    assert "Locals" not in output and "new_code" not in output


@pytest.mark.parametrize("depth, status", [(100_000, 413), (20_000, 400)])
def test_a_deeply_nested_body_is_refused_and_the_code_in_it_never_logged(controller, client, capfd, depth, status):
    configure_logging("DEBUG")
    body = '{"code": "%s", "phone": "%s", "x": %s%s}' % (KNOWN_CODE, KNOWN_PHONE, "[" * depth, "]" * depth)
    reply = client.post("/api/locker/pickup", data=body, content_type="application/json")
    assert reply.status_code == status
    captured = capfd.readouterr()
    assert KNOWN_CODE not in captured.out + captured.err
    assert KNOWN_PHONE not in captured.out + captured.err


def test_every_log_line_is_redacted(capfd):
    configure_logging("INFO")
    from edge.logs import get_logger

    get_logger("test").warning("careless", code=KNOWN_CODE, phone=KNOWN_PHONE, note=f"code {KNOWN_CODE}",
                               token="P1.AAAAbbbb.cccc", key="q0Z9xT3kLm8VbN2cR7wY5uJ1hG4fD6sA8pE0iO3tU=")
    import logging

    logging.getLogger("paho").error("foreign %s", KNOWN_PHONE)
    try:
        pickup_code = KNOWN_CODE  # noqa: F841 - a local that used to be printed
        raise RuntimeError("boom")
    except RuntimeError:
        get_logger("test").exception("failed")
    out = capfd.readouterr().err
    assert "careless" in out and "foreign" in out and "boom" in out
    for secret in (KNOWN_CODE, KNOWN_PHONE, "P1.AAAAbbbb", "q0Z9xT3kLm8VbN2cR7wY5uJ1hG4fD6sA8pE0iO3tU="):
        assert secret not in out
    assert redact("order 2026-11-30T08:00:00Z seq 1042 compartment 12") == \
        "order 2026-11-30T08:00:00Z seq 1042 compartment 12"
