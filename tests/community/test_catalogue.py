from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from edge.app import Controller, Simulation, _build_community
from edge.clock import FakeClock
from edge.community import CatalogueError, CatalogueService, text
from edge.community.models import ResidentRow, ServiceRow
from edge.settings import Settings, load_settings
from edge.storage import Database

from tests.support.community import SHANGHAI, payload


def test_replace_then_read_back(catalogue: CatalogueService) -> None:
    assert catalogue.version() == "2026-11-21T07:00:00Z"
    assert text(catalogue.station().name, "en") == "Nan'ao station"
    assert [s.id for s in catalogue.services()] == ["svc-insurance", "svc-booking", "svc-meals",
                                                    "svc-policy"]
    assert [s.id for s in catalogue.services("personal")] == ["svc-meals"]
    assert catalogue.venue("hall").facilities[0].en == "Projector"
    assert [n.id for n in catalogue.notices()] == ["n-new", "p-allowance", "n-old"]
    assert [n.id for n in catalogue.notices("policy")] == ["p-allowance"]
    assert text(catalogue.notice("p-allowance").office, "en") == "Civil affairs"


def test_replace_removes_what_the_new_catalogue_no_longer_has(catalogue: CatalogueService) -> None:
    summary = catalogue.replace(payload(version="v2", services=[
        {"id": "svc-new", "category": "public", "name": {"zh": "新服务"}}]))
    assert summary["version"] == "v2" and summary["services"] == 1
    assert [s.id for s in catalogue.services()] == ["svc-new"]
    with pytest.raises(CatalogueError) as refused:
        catalogue.service("svc-insurance")
    assert refused.value.code == "unknown_service"


@pytest.mark.parametrize(("change", "named"), [
    ({"services": [{"id": "a", "category": "shops", "name": {"zh": "x"}}]}, "services.0.category"),
    ({"services": [{"id": "a", "category": "public", "name": {"zh": "x"}}] * 2}, "repeat a id"),
    ({"venues": [{"id": "v", "name": {"zh": "x"}, "capacity": 5,
                  "opening_hours": [{"weekday": 1, "open": "18:00", "close": "09:00"}]}]},
     "open before it closes"),
    ({"activities": [{"id": "a", "title": {"zh": "x"}, "capacity": 3,
                      "starts_at": "2026-11-22T09:00:00", "ends_at": "2026-11-22T10:00:00"}]},
     "activities.0.starts_at"),
    ({"station": {"name": {"zh": "", "en": ""}}}, "station.name"),
    ({"residents": [{"resident_id": "r", "name_masked": "王*", "phone_hash": "not-a-hash"}]},
     "residents.0.phone_hash"),
    ({"version": ""}, "version"),
])
def test_a_bad_payload_changes_nothing_and_says_what_is_wrong(
        catalogue: CatalogueService, change: dict, named: str) -> None:
    with pytest.raises(CatalogueError) as refused:
        catalogue.replace(payload(**{"version": "v-bad", **change}))
    assert refused.value.code == "bad_catalogue"
    assert named in refused.value.message
    assert catalogue.version() == "2026-11-21T07:00:00Z"
    assert len(catalogue.services()) == 4 and len(catalogue.venues()) == 2


@pytest.mark.parametrize("data", [None, [], "catalogue", {"version": "v"}])
def test_payloads_that_are_not_catalogues_are_refused(catalogue: CatalogueService, data: object) -> None:
    with pytest.raises(CatalogueError):
        catalogue.replace(data)
    assert catalogue.version() == "2026-11-21T07:00:00Z"


def test_a_failure_half_way_through_the_swap_rolls_everything_back(
        catalogue: CatalogueService, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_audit(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk trouble after the old rows were deleted")

    monkeypatch.setattr("edge.community.catalogue.audit", failing_audit)
    with pytest.raises(RuntimeError):
        catalogue.replace(payload(version="v2", services=[], residents=[]))
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(ServiceRow)) == 4
        assert s.scalar(select(func.count()).select_from(ResidentRow)) == 1
    assert catalogue.version() == "2026-11-21T07:00:00Z"


def test_activities_of_a_day_follow_the_site_time_zone(catalogue: CatalogueService) -> None:
    # "late" starts 2026-11-21 17:00 UTC, which is 01:00 on the 22nd in Shanghai.
    assert [a.id for a in catalogue.activities(date(2026, 11, 21))] == ["talk"]
    assert [a.id for a in catalogue.activities(date(2026, 11, 22))] == ["late"]
    assert [a.id for a in catalogue.activities()] == ["talk", "late"]


def test_unknown_lookups_and_filters_are_clear_errors(catalogue: CatalogueService) -> None:
    for lookup, code in ((lambda: catalogue.venue("nope"), "unknown_venue"),
                         (lambda: catalogue.activity("nope"), "unknown_activity"),
                         (lambda: catalogue.notice("nope"), "unknown_notice"),
                         (lambda: catalogue.services("shops"), "bad_category"),
                         (lambda: catalogue.notices("ads"), "bad_kind")):
        with pytest.raises(CatalogueError) as refused:
            lookup()
        assert refused.value.code == code


def test_text_picks_the_language_and_falls_back(catalogue: CatalogueService) -> None:
    policy = catalogue.service("svc-policy")  # Chinese only
    assert text(policy.name, "en") == "政策咨询"
    assert text({"zh": "活动室", "en": "Activity room"}, "zh_CN") == "活动室"
    assert text({"zh": "活动室", "en": "Activity room"}, "en") == "Activity room"
    assert text(None, "en") == ""


def _simulated(settings: Settings, clock: FakeClock) -> Controller:
    db = Database(settings.database_path)
    db.upgrade()
    controller = Controller(settings=settings, db=db, clock=clock,
                            simulation=Simulation() if settings.simulate else None)
    _build_community(controller)
    return controller


def test_simulate_mode_seeds_the_demo_catalogue_once(tmp_path, clock: FakeClock) -> None:
    settings = load_settings(data_dir=tmp_path / "data", simulate=True)
    first = _simulated(settings, clock)
    catalogue = first.services.catalogue
    version = catalogue.version()
    assert {s.category for s in catalogue.services()} == {"public", "venue", "personal", "policy"}
    assert len(catalogue.venues()) >= 3
    started = [a for a in catalogue.activities(clock.now().astimezone(SHANGHAI).date())
               if a.signin_opens_at <= clock.now() <= a.signin_closes_at]
    assert started, "a demo activity is open for sign-in right now"
    resident = first.services.residents.identify_by_phone("13800138000")
    assert resident.resident_id == "res-1001"
    first.db.dispose()

    clock.advance(days=1)
    second = _simulated(settings, clock)
    assert second.services.catalogue.version() == version  # not re-seeded over a real sync
    second.db.dispose()


def test_simulate_mode_accepts_qr_codes_minted_with_the_demo_key(tmp_path, clock: FakeClock) -> None:
    from simulators.demo import demo_token_issuer

    settings = load_settings(data_dir=tmp_path / "data", simulate=True)
    controller = _simulated(settings, clock)
    token = demo_token_issuer(settings.keys_dir).issue("res-1002", "李*", clock.now() + timedelta(hours=1))
    assert controller.services.residents.identify_by_token(token).resident_id == "res-1002"
    assert (settings.keys_dir / "resident_token_demo_private.pem").stat().st_mode & 0o077 == 0
    controller.db.dispose()


def test_a_configured_key_that_cannot_be_read_stops_start_up_with_one_line(tmp_path, clock) -> None:
    from edge.settings import SettingsError

    settings = load_settings(data_dir=tmp_path / "data",
                             identity={"resident_token_public_key": str(tmp_path / "missing.pem")})
    with pytest.raises(SettingsError, match="identity.resident_token_public_key"):
        _simulated(settings, clock)


def test_notice_kinds_and_the_station_map_travel_in_the_catalogue(catalogue) -> None:
    """党务公开, 居务公开, 社区简介, 办事指南, 失物招领 are notice kinds; the map is a data: URI."""
    import pytest as _pytest

    from edge.community import CatalogueError
    from tests.support.community import payload

    kinds = ("party", "affairs", "about", "guide", "found")
    station = {"name": {"zh": "服务站"}, "address": {"zh": "海滨路18号"}, "phone": "0755-84401234",
               "map_image": "data:image/svg+xml;base64,PHN2Zy8+"}
    catalogue.replace(payload(station=station, notices=[
        {"id": f"n-{kind}", "kind": kind, "title": {"zh": kind}, "body": {"zh": "正文"},
         "published_at": "2026-11-20T00:00:00Z"} for kind in kinds]))
    for kind in kinds:
        assert [n.id for n in catalogue.notices(kind=kind)] == [f"n-{kind}"]
    assert catalogue.station().map_image.startswith("data:image/svg+xml;base64,")
    with _pytest.raises(CatalogueError):  # a map from the internet is refused: never fetched
        catalogue.replace(payload(station={**station, "map_image": "https://maps.example/x.png"}))
    with _pytest.raises(CatalogueError):
        catalogue.notices(kind="gossip")
