"""Jinja filters: times in the site's zone, days and opening hours in plain words."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import Flask, url_for
from markupsafe import Markup
from flask_babel import gettext as _

from edge.kiosk_ui.screens.common import N_, current_lang, site_zone

WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))


def local_time(moment: datetime) -> str:
    return moment.astimezone(site_zone()).strftime("%H:%M")


def local_date(moment: datetime | date) -> str:
    day = moment.astimezone(site_zone()).date() if isinstance(moment, datetime) else moment
    return day_name(day)


def day_name(day: date) -> str:
    """"11月21日 周六" or "Sat 21 Nov": the weekday matters most to people booking a room."""
    weekday = _(WEEKDAYS[day.weekday()])
    if current_lang() == "zh_CN":
        return f"{day.month}月{day.day}日 {weekday}"
    return f"{weekday} {day.day} {day.strftime('%b')}"


def opening_hours(hours: list[Any]) -> str:
    """One line per distinct span: "Mon–Fri 08:30–20:00; Sat 09:00–17:00"."""
    spans: dict[str, list[int]] = {}
    for entry in sorted(hours, key=lambda h: h.weekday):
        spans.setdefault(f"{entry.open}–{entry.close}", []).append(entry.weekday)
    parts = []
    for span, days in spans.items():
        first, last = _(WEEKDAYS[days[0]]), _(WEEKDAYS[days[-1]])
        contiguous = days == list(range(days[0], days[-1] + 1))
        named = f"{first}–{last}" if contiguous and len(days) > 1 else "、".join(_(WEEKDAYS[d]) for d in days)
        parts.append(f"{named} {span}")
    return "; ".join(parts) or _("Closed")


def icon(name: str, css_class: str = "icon") -> Markup:
    """A line icon from the local sprite; decorative, so hidden from screen readers."""
    sprite = url_for("static", filename="icons.svg")
    return Markup('<svg class="{}" aria-hidden="true" focusable="false"><use href="{}#{}"></use></svg>'
                  ).format(css_class, sprite, name)


def install_filters(app: Flask) -> None:
    app.jinja_env.globals["icon"] = icon
    for name, function in (("local_time", local_time), ("local_date", local_date),
                           ("day_name", day_name), ("opening_hours", opening_hours)):
        app.jinja_env.filters[name] = function
