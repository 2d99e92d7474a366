"""The platform's catalogue on the box: what the station offers, replaced whole on every sync.

`replace()` is the only writer. It validates the entire `catalogue.sync` payload first, then
swaps every catalogue table in one transaction, so the kiosk shows either the old catalogue
or the new one, never a mix (ADR 0050).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import delete, select

from edge.clock import Clock
from edge.community.errors import CatalogueError
from edge.community.models import (
    ActivityRow,
    CatalogueMetaRow,
    NoticeRow,
    ResidentRow,
    ServiceRow,
    VenueRow,
)
from edge.storage import Actor, Database, audit

CATEGORIES = ("public", "venue", "personal", "policy")
Category = Literal["public", "venue", "personal", "policy"]
RequestCategory = Literal["home_care", "repair", "errand", "other"]  # requests.CATEGORIES but emergency
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
_ID = r"^[A-Za-z0-9._:-]{1,64}$"


class _Item(BaseModel):
    # Unknown fields are ignored, so the platform can add fields before the edge knows them.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Text(BaseModel):
    """Bilingual text; at least one language must be given. Other languages the platform
    may add later are ignored, not refused."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    zh: str = ""
    en: str = ""

    @model_validator(mode="after")
    def _one_language(self) -> "Text":
        if not (self.zh.strip() or self.en.strip()):
            raise ValueError("text needs zh or en")
        return self

    def get(self, lang: str, default: str | None = None) -> str | None:
        """Mapping-style access, so `text(obj, lang)` takes a Text or a plain dict."""
        return getattr(self, lang, None) or default


MAX_MAP_IMAGE_CHARS = 300_000  # a simple map, synced with the catalogue: never fetched


class Station(_Item):
    name: Text
    opening_hours: str = ""
    address: Text | None = None
    phone: str = ""
    # A simple map of where the station is, as a data: URI (PNG, JPEG or SVG): the kiosk is
    # offline-first and must not fetch pictures from the internet.
    map_image: str | None = Field(None, max_length=MAX_MAP_IMAGE_CHARS,
                                  pattern=r"^data:image/(png|jpeg|svg\+xml);base64,[A-Za-z0-9+/=]+$")


class Service(_Item):
    id: str = Field(pattern=_ID)
    category: Category
    name: Text
    description: Text | None = None
    time: Text | None = None
    place: Text | None = None
    contact: str = ""
    how_to_apply: Text | None = None
    # Set when residents can apply for it from the kiosk: the help request's category it
    # starts with (one tap from the catalogue to a filled-in request).
    request_category: RequestCategory | None = None


class OpeningHours(_Item):
    weekday: int = Field(ge=0, le=6)  # Monday = 0, as datetime.weekday()
    open: str
    close: str

    @field_validator("open", "close")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("opening hours are HH:MM, 00:00-23:59")
        return value

    @model_validator(mode="after")
    def _open_before_close(self) -> "OpeningHours":
        if self.open >= self.close:
            raise ValueError("a venue must open before it closes")
        return self

    @property
    def opens(self) -> time:
        return time.fromisoformat(self.open)

    @property
    def closes(self) -> time:
        return time.fromisoformat(self.close)


class Venue(_Item):
    id: str = Field(pattern=_ID)
    name: Text
    description: Text | None = None
    photo: str | None = None
    capacity: int = Field(ge=1)
    facilities: list[Text] = []
    opening_hours: list[OpeningHours] = []
    slot_minutes: int = Field(60, ge=15, le=24 * 60)
    cancel_before_minutes: int = Field(120, ge=0)

    @model_validator(mode="after")
    def _hours_do_not_overlap(self) -> "Venue":
        for day in range(7):
            spans = sorted((h.open, h.close) for h in self.opening_hours if h.weekday == day)
            if any(a[1] > b[0] for a, b in zip(spans, spans[1:])):
                raise ValueError(f"opening hours overlap on weekday {day}")
        return self


class Activity(_Item):
    id: str = Field(pattern=_ID)
    title: Text
    description: Text | None = None
    place: Text | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    capacity: int = Field(ge=1)
    signin_opens_minutes_before: int = Field(30, ge=0)
    signin_closes_minutes_after: int = Field(30, ge=0)

    @model_validator(mode="after")
    def _starts_before_end(self) -> "Activity":
        if self.starts_at >= self.ends_at:
            raise ValueError("an activity must start before it ends")
        return self

    @property
    def signin_opens_at(self) -> datetime:
        return self.starts_at - timedelta(minutes=self.signin_opens_minutes_before)

    @property
    def signin_closes_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.signin_closes_minutes_after)


# notice, policy guide, 党务公开, 居务公开, 社区简介, 办事指南, 失物招领 (an item found and kept
# at the station: title, where it was found in body, where to claim it in office).
NoticeKind = Literal["notice", "policy", "party", "affairs", "about", "guide", "found"]
NOTICE_KINDS: tuple[str, ...] = NoticeKind.__args__  # type: ignore[attr-defined]


class Notice(_Item):
    id: str = Field(pattern=_ID)
    kind: NoticeKind
    title: Text
    body: Text
    published_at: AwareDatetime
    office: Text | None = None
    contact: str = ""


class SyncedResident(_Item):
    resident_id: str = Field(pattern=_ID)
    name_masked: str = Field(min_length=1, max_length=64)
    phone_masked: str = Field("", max_length=16)
    phone_hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class CataloguePayload(_Item):
    version: str = Field(min_length=1, max_length=64)
    station: Station
    services: list[Service] = []
    venues: list[Venue] = []
    activities: list[Activity] = []
    notices: list[Notice] = []
    residents: list[SyncedResident] = []

    @model_validator(mode="after")
    def _ids_unique(self) -> "CataloguePayload":
        for name, key in (("services", "id"), ("venues", "id"), ("activities", "id"),
                          ("notices", "id"), ("residents", "resident_id"),
                          ("residents", "phone_hash")):
            values = [getattr(item, key) for item in getattr(self, name)]
            if len(values) != len(set(values)):
                raise ValueError(f"{name} repeat a {key}")
        return self


def validate_payload(data: Any) -> CataloguePayload:
    """The payload as typed objects, or CatalogueError naming the first bad field."""
    try:
        return CataloguePayload.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise CatalogueError("bad_catalogue", f"catalogue refused: {where}: {first['msg']}{more}") from None


class CatalogueService:
    """Reads for the kiosk and the other community services; `replace()` for the cloud."""

    def __init__(self, db: Database, clock: Clock, tz: ZoneInfo) -> None:
        self._db = db
        self._clock = clock
        self.tz = tz

    def replace(self, data: Any) -> dict[str, Any]:
        payload = validate_payload(data)
        with self._db.write() as s:
            for table in (CatalogueMetaRow, ServiceRow, VenueRow, ActivityRow, NoticeRow,
                          ResidentRow):
                s.execute(delete(table))
            s.add(CatalogueMetaRow(id=1, version=payload.version,
                                   station=_doc(payload.station), replaced_at=self._clock.now()))
            s.add_all(ServiceRow(id=x.id, category=x.category, position=i, doc=_doc(x))
                      for i, x in enumerate(payload.services))
            s.add_all(VenueRow(id=x.id, position=i, doc=_doc(x))
                      for i, x in enumerate(payload.venues))
            s.add_all(ActivityRow(id=x.id, starts_at=x.starts_at, ends_at=x.ends_at, doc=_doc(x))
                      for x in payload.activities)
            s.add_all(NoticeRow(id=x.id, kind=x.kind, published_at=x.published_at, doc=_doc(x))
                      for x in payload.notices)
            s.add_all(ResidentRow(**x.model_dump()) for x in payload.residents)
            summary = {"version": payload.version, "services": len(payload.services),
                       "venues": len(payload.venues), "activities": len(payload.activities),
                       "notices": len(payload.notices), "residents": len(payload.residents)}
            audit(s, Actor.REMOTE, "catalogue.replace", "ok", target=payload.version,
                  detail=summary, clock=self._clock)
        return summary

    def version(self) -> str | None:
        with self._db.read() as s:
            return s.scalar(select(CatalogueMetaRow.version))

    def is_empty(self) -> bool:
        return self.version() is None

    def station(self) -> Station | None:
        with self._db.read() as s:
            doc = s.scalar(select(CatalogueMetaRow.station))
        return None if doc is None else Station.model_validate(doc)

    def services(self, category: str | None = None) -> list[Service]:
        query = select(ServiceRow.doc).order_by(ServiceRow.position)
        if category is not None:
            if category not in CATEGORIES:
                raise CatalogueError("bad_category", f"no service category {category!r}")
            query = query.where(ServiceRow.category == category)
        return self._all(query, Service.model_validate)

    def service(self, service_id: str) -> Service:
        return self._one(ServiceRow, service_id, Service.model_validate, "service")

    def venues(self) -> list[Venue]:
        return self._all(select(VenueRow.doc).order_by(VenueRow.position), Venue.model_validate)

    def venue(self, venue_id: str) -> Venue:
        return self._one(VenueRow, venue_id, Venue.model_validate, "venue")

    def activities(self, day: date | None = None, *, ended_since: datetime | None = None) -> list[Activity]:
        """Activities by start time: those on `day` (site time), else those not yet ended, or
        not ended before `ended_since` (我的服务 offers recently finished ones for rating)."""
        query = select(ActivityRow.doc).order_by(ActivityRow.starts_at, ActivityRow.id)
        if day is None:
            query = query.where(ActivityRow.ends_at > (ended_since or self._clock.now()))
        else:
            start = datetime.combine(day, time(), self.tz)
            end = datetime.combine(day + timedelta(days=1), time(), self.tz)
            query = query.where(ActivityRow.starts_at >= start, ActivityRow.starts_at < end)
        return self._all(query, Activity.model_validate)

    def activity(self, activity_id: str) -> Activity:
        return self._one(ActivityRow, activity_id, Activity.model_validate, "activity")

    def notices(self, kind: str | None = None) -> list[Notice]:
        """Notices and policy guides, newest first."""
        query = select(NoticeRow.doc).order_by(NoticeRow.published_at.desc(), NoticeRow.id)
        if kind is not None:
            if kind not in NOTICE_KINDS:
                raise CatalogueError("bad_kind", f"no notice kind {kind!r}")
            query = query.where(NoticeRow.kind == kind)
        return self._all(query, Notice.model_validate)

    def notice(self, notice_id: str) -> Notice:
        return self._one(NoticeRow, notice_id, Notice.model_validate, "notice")

    def _all(self, query: Any, parse: Callable[[Any], Any]) -> list[Any]:
        with self._db.read() as s:
            return [parse(doc) for doc in s.scalars(query)]

    def _one(self, table: Any, item_id: str, parse: Callable[[Any], Any], what: str) -> Any:
        with self._db.read() as s:
            doc = s.scalar(select(table.doc).where(table.id == item_id))
        if doc is None:
            raise CatalogueError(f"unknown_{what}", f"there is no {what} {item_id!r} in the catalogue")
        return parse(doc)


def _doc(item: BaseModel) -> dict[str, Any]:
    return item.model_dump(mode="json", exclude_none=True)
