"""Identity assurance (ADR 0115), one test per attack of a stranger who types a neighbour's
phone number, and the same person raised to HIGH by the one-time code the platform texts
(read here by opening the sealed event with the test platform key). Real controller wiring,
lock boards on a PTY, simulated cameras, the kiosk's forms with their CSRF tokens."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from edge.assurance import AssuranceTooLow
from edge.community import Resident
from edge.identity.models import OneTimeCodeRow
from simulators.people import synthetic_person
from tests.support.station import RESIDENT_A, RESIDENT_B, Station, audits, outbox
from tests.support.iris import enrol, eye_frames, iris, template_rows
from tests.support.platform import texted_code

pytestmark = pytest.mark.timeout(90)
VICTIM_ID, VICTIM_PHONE = RESIDENT_A


def type_phone(station: Station, phone: str, next_: str = "/") -> None:
    reply = station.post("/identify/phone", phone=phone, next=next_)
    assert reply.status_code == 302 and "/identify" not in reply.location


def ask_for_code(station: Station, resident_id: str = VICTIM_ID) -> str:
    """Tap "Text me a code"; returns the code as the platform opens it from the sealed event."""
    reply = station.post("/identify/otp/send", next="/")
    assert reply.status_code == 302
    events = [e for e in outbox(station.controller.db, "identity.otp_requested")
              if e.data["resident_id"] == resident_id]
    assert events, "no identity.otp_requested event"
    return texted_code(events[-1])


def type_code(station: Station, code: str, next_: str = "/") -> str:
    return station.post("/identify/otp", otp=code, next=next_).location


def book_for_victim(station: Station) -> str:
    """A pending booking of the victim's, made with the victim's own QR (HIGH)."""
    bookings, catalogue = station.controller.services.bookings, station.controller.services.catalogue
    venue = catalogue.venues()[0]
    day = (station.clock.now() + timedelta(days=1)).date()
    slot = next(s for s in bookings.day_slots(venue.id, day) if s.state == "free")
    victim = Resident(VICTIM_ID, "王*明", "138****8000", "qr", "high")
    return bookings.request(victim, venue.id, slot.start).booking_id


def booking_state(station: Station, booking_id: str) -> str:
    [booking] = [b for b in station.controller.services.bookings.bookings_of(VICTIM_ID)
                 if b.booking_id == booking_id]
    return booking.state


def test_a_typed_phone_can_ask_for_help_but_cannot_see_or_cancel_bookings(station: Station) -> None:
    booking_id = book_for_victim(station)
    type_phone(station, VICTIM_PHONE)

    seen = station.client.get("/venues/mine")
    assert seen.status_code == 302 and "/identify/otp" in seen.location
    cancelled = station.client.post(f"/venues/mine/{booking_id}/cancel", data={"csrf_token": station.csrf()})
    assert "/identify/otp" in cancelled.location
    assert booking_state(station, booking_id) == "pending"
    low = Resident(VICTIM_ID, "王*明", "138****8000", "phone", "low")
    with pytest.raises(AssuranceTooLow):  # the service checks too, not only the screen
        station.controller.services.bookings.cancel(low, booking_id)
    assert booking_state(station, booking_id) == "pending"
    # low assurance is enough to ask for help
    page = station.client.get("/help/").get_data(as_text=True)
    assert "/identify/otp" not in page


def test_a_typed_phone_cannot_give_iris_consent_enrol_or_revoke(station: Station) -> None:
    type_phone(station, VICTIM_PHONE)
    for path in ("/iris/enrol",):
        assert "/identify/otp" in station.client.get(path).location
    assert "/identify/otp" in station.post("/iris/consent").location
    assert "/identify/otp" in station.post("/iris/capture").location
    assert template_rows(station) == {} and iris(station).consents_of(VICTIM_ID) == []
    with pytest.raises(AssuranceTooLow):
        iris(station).enrol(VICTIM_ID, eye_frames(VICTIM_ID), consent=True, recorded_how="x", assurance="low")
    assert audits(station.controller.db, "iris_enrol")[-1].result == "refused_assurance_too_low"
    assert audits(station.controller.db, "iris_enrol")[-1].detail == {"assurance": "low"}

    enrol(station, VICTIM_ID)  # the victim enrolled earlier, in person
    assert "/identify/otp" in station.post("/iris/revoke").location
    assert list(template_rows(station)) == [VICTIM_ID]
    with pytest.raises(AssuranceTooLow):
        iris(station).revoke(VICTIM_ID, assurance="low")
    assert list(template_rows(station)) == [VICTIM_ID]


def test_a_typed_phone_cannot_enrol_a_stranger_s_eye_to_open_the_victim_s_parcels(station: Station) -> None:
    parcel = station.deposit(VICTIM_PHONE)
    type_phone(station, VICTIM_PHONE)
    station.post("/iris/consent")
    for _ in range(4):  # the stranger's own eye in front of the camera
        station.iris_camera.show_eye(synthetic_person("stranger"))
        station.post("/iris/capture")
    assert not iris(station).is_enrolled(VICTIM_ID)

    station.iris_camera.show_eye(synthetic_person("stranger"))
    station.post("/iris/pickup")
    assert not station.door_open(parcel["compartment"])
    assert audits(station.controller.db, "iris_identify")[-1].result == "nobody_enrolled"


def test_the_texted_code_gives_high_assurance_and_nothing_keeps_it_in_clear(station: Station) -> None:
    booking_id = book_for_victim(station)
    type_phone(station, VICTIM_PHONE)
    assert "/identify/otp" in station.client.get("/venues/mine").location
    code = ask_for_code(station)

    [event] = outbox(station.controller.db, "identity.otp_requested")
    assert code not in json.dumps(event.data) and set(event.data) >= {"resident_id", "expires_at", "secret"}
    with station.controller.db.read() as s:
        [row] = s.scalars(select(OneTimeCodeRow)).all()
        assert code not in row.code_hash and len(row.code_hash) == 64
    assert not any(code in json.dumps(a.detail) + str(a.target) for a in audits(station.controller.db))
    shown = station.controller.services.locker_diagnostics.events()["outbox"]  # edge diag events
    [otp_row] = [e for e in shown if e["type"] == "identity.otp_requested"]
    assert otp_row["data"]["secret"] != event.data["secret"] and otp_row["data"]["resident_id"] == VICTIM_ID

    assert type_code(station, code, "/venues/mine").endswith("/venues/mine")
    page = station.client.get("/venues/mine")
    assert page.status_code == 200 and booking_id in page.get_data(as_text=True)
    station.client.post(f"/venues/mine/{booking_id}/cancel", data={"csrf_token": station.csrf()})
    assert booking_state(station, booking_id) == "cancelled"
    assert audits(station.controller.db, "booking.cancel")[-1].detail == {"assurance": "high"}
    # the same visit may now enrol, and the audit names the level
    assert station.post("/iris/consent").location.endswith("/iris/capture")
    for _ in range(6):
        if station.post("/iris/capture").status_code == 302:
            break
    assert iris(station).is_enrolled(VICTIM_ID)
    [enrolled] = [a for a in audits(station.controller.db, "iris_enrol") if a.result == "enrolled"]
    assert enrolled.actor_id == VICTIM_ID and enrolled.detail["assurance"] == "high"
    # a code works once
    assert "/identify/otp" in type_code(station, code)
    assert audits(station.controller.db, "identity_otp")[-1].result == "no_code"


def test_a_stored_template_is_not_replaced_until_its_owner_revokes_it(station: Station) -> None:
    enrol(station, VICTIM_ID)
    type_phone(station, VICTIM_PHONE)
    type_code(station, ask_for_code(station))
    refused = station.post("/iris/consent")
    assert refused.location.endswith("/iris/enrol") and list(template_rows(station)) == [VICTIM_ID]
    assert station.client.get("/iris/capture").location.endswith("/iris/enrol")  # no consent kept
    assert station.post("/iris/revoke").location.endswith("/iris/enrol")
    assert template_rows(station) == {}
    [revoked] = [a for a in audits(station.controller.db, "iris_revoke")]
    assert revoked.actor == "resident" and revoked.detail == {"assurance": "high"}
    assert station.post("/iris/consent").location.endswith("/iris/capture")


def test_wrong_codes_cool_down_per_kiosk_and_per_phone(station: Station) -> None:
    codes = station.controller.services.otp
    type_phone(station, VICTIM_PHONE)
    code = ask_for_code(station)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(4):
        assert "/identify/otp" in type_code(station, wrong)
    assert audits(station.controller.db, "identity_otp")[-1].detail["attempts_left"] == 1
    type_code(station, wrong)  # the fifth starts the cooldown and spends the code
    assert audits(station.controller.db, "identity_otp")[-1].result == "wrong_cooldown_started"
    assert "/identify/otp" in type_code(station, code)  # the right code, too late
    assert audits(station.controller.db, "identity_otp")[-1].result == "cooling_down"
    assert station.client.get("/venues/mine").status_code == 302

    # per phone: the same resident at another kiosk waits too
    from edge.identity.otp import OtpError

    with pytest.raises(OtpError) as elsewhere:
        codes.verify(VICTIM_ID, code, "kiosk-other")
    assert elsewhere.value.code == "cooling_down"
    # per kiosk: another resident at this kiosk waits too
    with pytest.raises(OtpError) as neighbour:
        codes.request(RESIDENT_B[0], station.controller.settings.mqtt.device_id)
    assert neighbour.value.code == "cooling_down"

    station.clock.advance(seconds=301)
    type_phone(station, VICTIM_PHONE)  # the idle visit ended meanwhile
    assert "/identify/otp" in type_code(station, code)  # spent by the cooldown: ask again
    fresh = ask_for_code(station)
    assert type_code(station, fresh, "/venues/mine").endswith("/venues/mine")
    assert station.client.get("/venues/mine").status_code == 200


def test_a_code_expires_after_five_minutes_and_is_not_resent_at_once(station: Station) -> None:
    type_phone(station, VICTIM_PHONE)
    code = ask_for_code(station)
    station.post("/identify/otp/send", next="/")  # again at once: refused, nothing texted
    assert len(outbox(station.controller.db, "identity.otp_requested")) == 1
    station.clock.advance(seconds=301)
    type_phone(station, VICTIM_PHONE)  # the idle visit ended meanwhile
    assert "/identify/otp" in type_code(station, code)
    assert audits(station.controller.db, "identity_otp")[-1].result == "expired"
