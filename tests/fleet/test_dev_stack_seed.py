"""What `fleet dev` puts in the platform's database at each start: the demo org tree and
staff login (a new password every start, the old one refused), and the platform's copy of
the station's catalogue only once; and what its demo notifier prints."""
from __future__ import annotations

from datetime import datetime, timezone

from fleet.console import accounts
from fleet.devstack import DEMO_STAFF, PrintingNotifier, publish_catalogue_once, seed_demo
from fleet.notify import Notification
from simulators.cloud import load_catalogue
from tests.support.fleet import count

SITE, DEVICE = "dev-site", "kiosk-01"
NOW = datetime(2026, 11, 30, 1, 0, tzinfo=timezone.utc)


def test_seeding_twice_keeps_one_tree_and_renews_the_password(pg) -> None:
    first = seed_demo(pg, SITE, DEVICE)
    second = seed_demo(pg, SITE, DEVICE)
    assert first != second
    assert count(pg, "SELECT count(*) FROM org_units") == 3
    assert count(pg, "SELECT count(*) FROM staff") == 1
    assert count(pg, "SELECT count(*) FROM devices d JOIN org_units o ON o.id = d.community_id "
                     "WHERE d.site_id = %s AND o.level = 'community'", SITE) == 1
    with pg.transaction():
        assert accounts.authenticate(pg, DEMO_STAFF, first, NOW) is None
        staff = accounts.authenticate(pg, DEMO_STAFF, second, NOW)
    assert staff is not None and staff.level == "community"


def test_the_catalogue_is_published_once_and_staff_edits_are_kept(pg) -> None:
    seed_demo(pg, SITE, DEVICE)
    version = publish_catalogue_once(pg, SITE, DEVICE, NOW, lambda: load_catalogue(None, SITE))
    assert version is not None
    assert count(pg, "SELECT count(*) FROM outgoing_commands WHERE topic LIKE %s", "%/cmd/catalogue.sync") == 1
    assert publish_catalogue_once(pg, SITE, DEVICE, NOW, lambda: load_catalogue(None, SITE)) is None
    assert count(pg, "SELECT count(*) FROM outgoing_commands") == 1
    assert count(pg, "SELECT count(*) FROM station_catalogues WHERE version = %s", version) == 1


def test_the_demo_notifier_prints_the_sms_it_would_send(capsys) -> None:
    notifier = PrintingNotifier()
    notifier.notify(Notification("parcel.deposited", SITE, DEVICE, "m-1",
                                 {"phone_masked": "138****5678", "compartment": 7},
                                 {"pickup_code": "482913", "pickup_token": "t"}))
    notifier.notify(Notification("identity.otp_requested", SITE, DEVICE, "m-2",
                                 {"resident_id": "res-1001"}, {"otp": "551203"}))
    notifier.notify(Notification("other.event", SITE, DEVICE, "m-3", {}, {"x": "y"}))
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["[platform] SMS to 138****5678: parcel in compartment 7, pickup code 482913",
                       "[platform] SMS to resident res-1001: your code is 551203"]
