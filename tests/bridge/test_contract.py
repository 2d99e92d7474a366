"""The contract document is consistent, covers every event type, and its schemas enforce
the envelope and the personal-data rules."""
from __future__ import annotations

import json
import re

import pytest
import yaml

from cloud_bridge import contract
from cloud_bridge.bridge import Topics
from cloud_bridge.commands import REPLY_TYPE

CONTRACT_EVENT_TYPES = [  # named in ../shared/protocols/mqtt-contract.md
    "parcel.deposited", "parcel.collected", "parcel.overdue", "parcel.returned", "door.opened",
    "door.closed", "door.left_open", "door.fault", "booking.requested", "booking.cancelled",
    "signin.recorded", "request.submitted", "feedback.submitted",
]
ENVELOPE = {"message_id": "5b1c2d3e-0000-4000-8000-000000000001", "seq": 7, "ts": "2026-11-21T08:30:00.123Z",
            "site_id": "dapeng-nanao-01", "device_id": "kiosk-01"}


def event(type_: str, **data: object) -> dict:
    return {**ENVELOPE, "type": type_, "data": data}


@pytest.fixture(scope="module")
def document() -> dict:
    return yaml.safe_load(contract.ASYNCAPI_FILE.read_text())


def test_asyncapi_document_references_only_existing_schemas(document):
    assert document["asyncapi"].startswith("3.")
    refs = re.findall(r"\./schemas/([\w.]+\.json)", contract.ASYNCAPI_FILE.read_text())
    assert refs and all((contract.SCHEMA_DIR / ref).is_file() for ref in refs)
    for channel in document["channels"].values():
        for message in channel["messages"].values():
            name = message["$ref"].rsplit("/", 1)[1]
            assert name in document["components"]["messages"]


def test_every_contract_event_type_and_command_has_a_schema(document):
    assert set(CONTRACT_EVENT_TYPES) <= set(contract.event_types())
    assert set(contract.event_types()) == set(document["channels"]["events"]["parameters"]["type"]["enum"])
    assert {"catalogue.sync", "booking.decision", "locker.open", "config.set", "ping"} <= set(contract.command_names())


def test_command_fixtures_and_the_example_catalogue_conform():
    fixtures = list((contract.EXAMPLES_DIR / "commands").glob("*.json"))
    assert len(fixtures) >= 4
    for path in fixtures:
        contract.validate(f"cmd.{path.stem}", json.loads(path.read_text()))
    catalogue = json.loads((contract.EXAMPLES_DIR / "catalogue.json").read_text())
    contract.validate("cmd.catalogue.sync", {**json.loads(fixtures[0].read_text()), "type": "catalogue.sync",
                                             "data": catalogue})


def test_the_envelope_is_strict():
    contract.validate("evt.door.opened", event("door.opened", compartment=3))
    for broken in ({k: v for k, v in event("door.opened", compartment=3).items() if k != "seq"},
                   {**event("door.opened", compartment=3), "extra": 1},
                   {**event("door.opened", compartment=3), "seq": 0},
                   {**event("door.opened", compartment=3), "ts": "yesterday"},
                   event("door.closed", compartment=3)):  # type does not match the schema
        with pytest.raises(contract.ContractError):
            contract.validate("evt.door.opened", broken)


SEALED = "A" * 120  # shaped like data.secret


def test_event_data_may_grow_but_personal_data_may_not_leave():
    contract.validate("evt.parcel.deposited", event("parcel.deposited", compartment=3, parcel_id="p-1",
                                                    secret=SEALED, phone="138****5678", new_field=True))
    for leak in ({"phone": "13812345678"}, {"recipient_phone": "13812345678"}, {"iris_template": "AAAA"},
                 {"phone_hash": "ab" * 32}, {"pickup_code": "12345678"}, {"pickup_token": "P1.x"}):
        with pytest.raises(contract.ContractError):
            contract.validate("evt.parcel.deposited",
                              event("parcel.deposited", compartment=3, parcel_id="p-1", secret=SEALED, **leak))


def test_a_deposited_event_without_its_sealed_secret_is_refused():
    with pytest.raises(contract.ContractError):
        contract.validate("evt.parcel.deposited", event("parcel.deposited", compartment=3, parcel_id="p-1"))


def test_the_bridge_envelope_for_a_reply_conforms():
    from cloud_bridge.bridge import Bridge  # the encoder the bridge uses on the wire
    from cloud_bridge.envelope import Envelopes

    encoder = Bridge.__new__(Bridge)
    encoder.topics = Topics("s", "d")
    encoder._envelopes = Envelopes("s", "d")
    body = json.dumps({"transaction_id": "t-1", "command": "ping", "ok": False,
                       "error": {"code": "expired", "message": "too late"}})
    topic, payload, properties = encoder._encode((3, ENVELOPE["message_id"], REPLY_TYPE,
                                                  "2026-11-21 08:30:00.123456", body, None, b"c"))
    assert topic == "edge/v1/s/d/reply" and properties.CorrelationData == b"c"
    contract.validate("reply", json.loads(payload))
    topic, payload, _ = encoder._encode((4, ENVELOPE["message_id"], "door.opened",
                                         "2026-11-21 08:30:00.123456", '{"compartment":3}', None, None))
    assert topic == "edge/v1/s/d/evt/door.opened"
    contract.validate("evt.door.opened", json.loads(payload))
    assert json.loads(payload)["ts"] == "2026-11-21T08:30:00.123Z"
