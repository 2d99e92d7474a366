"""Inputs (issue 9, item 7): ASCII digits only where digits are meant, venue photos only
inline or from the app's own static path."""
from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from simulators.demo import demo_catalogue
from edge.locker.codes import normalise_code
from edge.privacy import InvalidPhone, normalise_phone
from tests.support.station import PHONE, audits

ARABIC_INDIC_PHONE = "13٨١٢٣٤٥٦٧٨"  # 13812345678, after "13" in Arabic-Indic digits
FULL_WIDTH_CODE = "１２３４５６７８"


@pytest.mark.parametrize("phone", [ARABIC_INDIC_PHONE, "13８１２３４５６７８", "13８12345678"])
def test_phones_take_ascii_digits_only(phone):
    with pytest.raises(InvalidPhone):
        normalise_phone(phone)
    assert normalise_phone("+86 138-1234-5678") == PHONE


def test_pickup_codes_take_ascii_digits_only():
    assert normalise_code("١٢٣٤٥٦٧٨") is None and normalise_code(FULL_WIDTH_CODE) is None
    assert normalise_code("1234 5678") == "12345678"


def test_a_deposit_with_a_non_ascii_phone_is_a_clear_400(client, courier, sim):
    reply = client.post("/api/locker/deposits", headers=courier,
                        json={"waybill": "SF1", "phone": ARABIC_INDIC_PHONE, "size": "M"})
    assert reply.status_code == 400 and reply.json["error"]["code"] == "bad_phone"
    assert not any(f.data[2] == 0x31 for f in sim.frames_received)


def test_the_kiosk_keypad_refuses_a_non_ascii_code(controller, client):
    import re

    
    page = client.get("/pickup/")
    token = re.search(rb'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page.data).group(1).decode()
    reply = client.post("/pickup/code", data={"code": FULL_WIDTH_CODE, "csrf_token": token}, follow_redirects=True)
    assert reply.status_code == 200
    assert audits(controller.db, "pickup_code") == []  # refused as a shape, never tried as a code


def test_venue_photos_come_only_from_data_or_the_apps_static_path(controller, client):
    catalogue = demo_catalogue(controller.clock.now(), ZoneInfo("Asia/Shanghai"), controller.settings.mqtt.site_id)
    photos = ["//evil.example/x.png", "/\\evil.example/x.png", "https://evil.example/x.png",
              "/static/../../etc/x.png", "data:image/png;base64,iVBORw0KGgo=", "/static/venue.png"]
    venues = catalogue["venues"]
    assert len(venues) >= 2
    for venue, photo in zip(venues * 3, photos):
        venue["photo"] = photo
    shown = []
    for index in range(0, len(photos), len(venues)):
        for venue, photo in zip(venues, photos[index:index + len(venues)]):
            venue["photo"] = photo
        controller.services.catalogue.replace(catalogue)
        html = client.get("/venues/").get_data(as_text=True)
        shown += [photo for photo in photos[index:index + len(venues)] if f'src="{photo}"' in html]
    assert shown == ["data:image/png;base64,iVBORw0KGgo=", "/static/venue.png"]
