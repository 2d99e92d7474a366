"""Jinja filters: times in the site's zone, days and opening hours in plain words."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import Flask, url_for
from markupsafe import Markup
from flask_babel import gettext as _

from edge.kiosk_ui.screens.common import N_, current_lang, pick, site_zone

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
    """Days with the same hours together: "Mon–Fri 09:00–12:00, 14:00–21:00; Sat–Sun 09:00–18:00"."""
    by_day: dict[int, list[str]] = {}
    for entry in sorted(hours, key=lambda h: (h.weekday, h.open)):
        by_day.setdefault(entry.weekday, []).append(f"{entry.open}–{entry.close}")
    groups: list[tuple[list[int], str]] = []
    for day, spans in sorted(by_day.items()):
        text = ", ".join(spans)
        if groups and groups[-1][1] == text and groups[-1][0][-1] == day - 1:
            groups[-1][0].append(day)
        else:
            groups.append(([day], text))
    parts = []
    for days, text in groups:
        named = _(WEEKDAYS[days[0]]) + (f"–{_(WEEKDAYS[days[-1]])}" if len(days) > 1 else "")
        parts.append(f"{named} {text}")
    return "; ".join(parts) or _("Closed")


def icon(name: str, css_class: str = "icon") -> Markup:
    """A line icon from the local sprite; decorative, so hidden from screen readers."""
    sprite = url_for("static", filename="icons.svg")
    return Markup('<svg class="{}" aria-hidden="true" focusable="false"><use href="{}#{}"></use></svg>'
                  ).format(css_class, sprite, name)


def colon() -> str:
    """The colon after a label: full-width in Chinese text (「地址：」), ": " in English."""
    from edge.kiosk_ui.screens.common import current_lang

    return "：" if current_lang() == "zh_CN" else ": "


def install_filters(app: Flask) -> None:
    app.jinja_env.globals["icon"] = icon
    app.jinja_env.globals["colon"] = colon
    app.jinja_env.filters["pick"] = pick
    for name, function in (("local_time", local_time), ("local_date", local_date),
                           ("day_name", day_name), ("opening_hours", opening_hours)):
        app.jinja_env.filters[name] = function
