"""Commands: every fault gets an error reply and no effect; a repeated transaction_id gets
the first result again and runs nothing twice; nothing a command carries crashes the edge."""
from __future__ import annotations

import json
import random
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from cloud_bridge import CommandRouter, ConfigCommand, Route, apply_stored_overrides
from cloud_bridge.commands import REPLY_TYPE, ping_handler
from cloud_bridge.models import ProcessedCommand, ReplyRoute
from edge.clock import FakeClock, iso_utc
from edge.settings import Settings
from edge.storage import Database, KeyValue, OutboxEvent, record_event


def command(name: str, data: Any, clock: FakeClock, *, transaction_id: str | None = None,
            expires_in: timedelta | None = timedelta(minutes=5), **extra: Any) -> bytes:
    body = {"message_id": str(uuid.uuid4()), "type": name, "ts": iso_utc(clock.now()),
            "transaction_id": transaction_id or str(uuid.uuid4()), "data": data, **extra}
    if expires_in is not None:
        body["expires_at"] = iso_utc(clock.now() + expires_in)
    return json.dumps(body).encode()


class Doors:
    """A stand-in domain service that records what it was asked to do."""

    def __init__(self) -> None:
        self.opened: list[int] = []

    def open_remote(self, data: dict[str, Any]) -> dict[str, Any]:
        if data["compartment"] == 99:
            raise DomainError()
        self.opened.append(data["compartment"])
        return {"compartment": data["compartment"], "state": "door_open"}


class DomainError(Exception):
    code = "no_such_compartment"
    message = "there is no compartment 99"


@pytest.fixture
def doors() -> Doors:
    return Doors()


@pytest.fixture
def router(db: Database, clock: FakeClock, doors: Doors, settings: Settings) -> CommandRouter:
    router = CommandRouter(db, clock)
    router.register("locker.open", doors.open_remote)
    router.register("ping", ping_handler("1.2.3"), in_transaction=True)
    router.register("config.set", ConfigCommand(settings), in_transaction=True)
    return router


def replies(db: Database) -> list[dict[str, Any]]:
    with db.read() as session:
        return [row.data for row in session.scalars(
            select(OutboxEvent).where(OutboxEvent.type == REPLY_TYPE).order_by(OutboxEvent.seq))]


OPEN = {"compartment": 12, "operator": "ops-zhang", "reason": "resident lost the code"}


def test_a_command_runs_and_its_reply_is_queued_durably(router, db, clock, doors):
    outcome = router.handle("locker.open", command("locker.open", OPEN, clock, transaction_id="tx-1"),
                            Route("cloud/replies", b"corr-1"))
    assert outcome == {"ok": True, "result": {"compartment": 12, "state": "door_open"}}
    assert doors.opened == [12]
    [reply] = replies(db)
    assert reply["transaction_id"] == "tx-1" and reply["ok"] is True
    with db.read() as session:
        route = session.scalars(select(ReplyRoute)).one()
    assert (route.topic, route.correlation_data) == ("cloud/replies", b"corr-1")


def test_a_repeated_transaction_id_repeats_the_first_result_without_a_second_effect(router, db, clock, doors):
    first = router.handle("locker.open", command("locker.open", OPEN, clock, transaction_id="tx-2"))
    again = router.handle("locker.open", command("locker.open", OPEN, clock, transaction_id="tx-2"))
    assert doors.opened == [12]
    assert again == {**first, "duplicate": True}
    assert [r.get("duplicate", False) for r in replies(db)] == [False, True]


@pytest.mark.parametrize("payload, code", [
    (b"{not json", "malformed"),
    (b"\xff\xfe\x00", "malformed"),
    (b"[1, 2, 3]", "malformed"),
    (json.dumps({"type": "locker.open", "data": {}}).encode(), "malformed"),  # no envelope
])
def test_malformed_payloads_are_refused(router, db, doors, payload, code):
    outcome = router.handle("locker.open", payload)
    assert outcome["ok"] is False and outcome["error"]["code"] == code
    assert doors.opened == []
    assert replies(db)[-1]["error"]["code"] == code


def test_schema_invalid_data_is_refused(router, db, clock, doors):
    outcome = router.handle("locker.open", command("locker.open", {**OPEN, "compartment": "twelve"}, clock))
    assert outcome["error"]["code"] == "invalid" and "compartment" in outcome["error"]["message"]
    assert doors.opened == []


def test_a_type_that_does_not_match_the_topic_is_refused(router, clock, doors):
    outcome = router.handle("locker.open", command("ping", {}, clock))
    assert outcome["error"]["code"] == "malformed"


def test_an_unknown_command_is_refused(router, clock):
    outcome = router.handle("locker.explode", command("locker.explode", {}, clock))
    assert outcome["error"]["code"] == "unknown_command"


def test_an_expired_command_has_no_effect(router, db, clock, doors):
    payload = command("locker.open", OPEN, clock, transaction_id="tx-late", expires_in=timedelta(seconds=30))
    clock.advance(seconds=31)
    outcome = router.handle("locker.open", payload)
    assert outcome["error"]["code"] == "expired"
    assert doors.opened == []
    # Re-sent with the same transaction_id it stays refused: the first answer is the answer.
    assert router.handle("locker.open", payload)["error"]["code"] == "expired"
    assert doors.opened == []


def test_a_domain_error_is_reported_with_its_code(router, clock):
    outcome = router.handle("locker.open", command("locker.open", {**OPEN, "compartment": 99}, clock))
    assert outcome["error"] == {"code": "no_such_compartment", "message": "there is no compartment 99"}


def test_an_in_transaction_failure_leaves_no_half_done_writes(db, clock):
    router = CommandRouter(db, clock)

    def half_done(session, data):
        session.add(KeyValue(key="half", value="written"))
        session.flush()
        raise RuntimeError("boom")

    router.register("ping", half_done, in_transaction=True)
    outcome = router.handle("ping", command("ping", {}, clock, transaction_id="tx-half"))
    assert outcome["error"]["code"] == "internal"
    with db.read() as session:
        assert session.get(KeyValue, "half") is None
        assert session.get(ProcessedCommand, "tx-half").outcome == outcome


def test_a_command_interrupted_mid_run_is_not_run_again(db, clock, doors):
    router = CommandRouter(db, clock)
    router.register("locker.open", doors.open_remote)
    with db.write() as session:  # what a crash inside the handler leaves behind
        session.add(ProcessedCommand(transaction_id="tx-crash", command="locker.open", state="running",
                                     outcome={}, received_at=clock.now()))
    outcome = router.handle("locker.open", command("locker.open", OPEN, clock, transaction_id="tx-crash"))
    assert outcome["error"]["code"] == "outcome_unknown" and outcome["duplicate"] is True
    assert doors.opened == []


def test_random_bytes_and_wrong_types_never_escape_the_router(router, db, clock, doors):
    rng = random.Random(20261121)
    names = ["locker.open", "ping", "config.set", "catalogue.sync", "x" * 300, "", "cmd/#"]
    wrong_values: list[Any] = [None, 0, -1, 2**70, 1.5, "", "x" * 5000, [], {}, [{}], True,
                               {"$ref": "#"}, "2026-13-45T99:99:99Z"]
    for _ in range(300):
        name = rng.choice(names)
        kind = rng.randrange(3)
        if kind == 0:
            payload = bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
        elif kind == 1:
            body = json.loads(command(name or "ping", {}, clock))
            body[rng.choice(list(body) + ["data", "expires_at"])] = rng.choice(wrong_values)
            payload = json.dumps(body).encode()
        else:
            data = {k: rng.choice(wrong_values) for k in rng.sample(
                ["compartment", "operator", "reason", "settings", "version"], 3)}
            payload = command(name or "ping", data, clock)
        outcome = router.handle(name, payload)
        assert outcome["ok"] in (True, False)
    assert router.handle("ping", b"[" * 100_000)["error"]["code"] == "malformed"  # deep nesting
    assert doors.opened == [], "a fuzzed command opened a door"
    assert all(r["ok"] is False or r["command"] == "ping" for r in replies(db))


# -- config.set ----------------------------------------------------------------------------
def test_config_set_stores_validated_settings_and_applies_live_ones(router, db, clock, settings):
    outcome = router.handle("config.set", command("config.set", {"settings": {
        "kiosk.idle_timeout_s": 120, "locker.retention_hours": 48, "site.opening_hours": "08:00-21:00"}}, clock))
    assert outcome["ok"] is True
    assert outcome["result"]["applied_now"] == ["kiosk.idle_timeout_s"]
    assert settings.kiosk.idle_timeout_s == 120  # live
    assert settings.locker.retention_hours == 72  # at the next start
    restarted = apply_stored_overrides(settings, db)
    assert (restarted.locker.retention_hours, restarted.site.opening_hours) == (48, "08:00-21:00")


@pytest.mark.parametrize("changes, words", [
    ({"kiosk.idle_warning_s": 5}, "idle_warning_s"),  # the Settings model's own bound
    ({"mqtt.host": "evil.example"}, "mqtt.host"),  # not in the safe subset
    ({"site.opening_hours": "whenever"}, "opening_hours"),
])
def test_config_set_refuses_unsafe_or_invalid_values(router, db, clock, settings, changes, words):
    outcome = router.handle("config.set", command("config.set", {"settings": changes}, clock))
    assert outcome["ok"] is False and outcome["error"]["code"] == "invalid"
    assert words in outcome["error"]["message"]
    assert apply_stored_overrides(settings, db) == settings


def test_a_stored_override_that_no_longer_validates_is_skipped(db, settings):
    with db.write() as session:
        session.add(KeyValue(key="config.overrides",
                             value=json.dumps({"kiosk.idle_warning_s": 3, "kiosk.idle_timeout_s": 99})))
    applied = apply_stored_overrides(settings, db)
    assert (applied.kiosk.idle_warning_s, applied.kiosk.idle_timeout_s) == (25, 99)


def test_ping_reports_the_backlog(router, db, clock):
    with db.write() as session:
        record_event(session, "door.opened", {"compartment": 1})
    outcome = router.handle("ping", command("ping", {}, clock))
    assert outcome["result"]["pong"] is True and outcome["result"]["outbox_pending"] == 1


def test_a_handler_name_without_a_schema_is_refused_at_wiring_time(db, clock):
    with pytest.raises(ValueError, match="no schema"):
        CommandRouter(db, clock).register("locker.explode", lambda data: None)


def test_reconnect_delay_grows_then_stays_capped_and_is_jittered() -> None:
    import random

    from cloud_bridge.bridge import reconnect_delay

    rng = random.Random(5)
    delays = [[reconnect_delay(a, 0.5, 30.0, rng.uniform) for _ in range(200)] for a in range(12)]
    assert all(0.25 <= d <= 0.5 for d in delays[0])
    assert max(delays[3]) <= 4.0 and min(delays[3]) >= 2.0  # 0.5 * 2**3, jittered down to half
    assert all(15.0 <= d <= 30.0 for row in delays[7:] for d in row)  # capped at max_s
    assert len({round(d, 6) for d in delays[11]}) > 150  # jitter: no two boxes in step
