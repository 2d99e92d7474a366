"""Staff console pages over a large platform database: how long the mailbox, the lost-and-found
page and the help requests take to render for a district (everything) and for a community.

    python bench/console_pages.py [--stations 200] [--requests 100000] [--rounds 20]

Creates a fresh database on the server of FLEET_TEST_DATABASE_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/test), dropped at the end; fills it with one
district > 10 streets > communities of one station each, requests of every category (one in
ten a letter, one in twenty a found-item report) and found items; then renders each page
through the Flask app (test client, no network) and prints the median and 95th percentile.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from fleet import db as fleet_db  # noqa: E402
from fleet.console import accounts  # noqa: E402
from fleet.console.app import create_app  # noqa: E402
from fleet.settings import load_settings  # noqa: E402

PASSWORD = "bench password 1"
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
CATEGORIES = ["repair"] * 6 + ["errand"] * 2 + ["letter"] * 2 + ["found_item"]  # about 1/10 letters...


def fill(url: str, stations: int, requests: int) -> None:
    with fleet_db.connect(url) as conn:
        district = accounts.add_unit(conn, "区", "district")
        streets = [accounts.add_unit(conn, f"街道{n}", "street", district) for n in range(10)]
        for n in range(stations):
            community = accounts.add_unit(conn, f"社区{n}", "community", streets[n % 10])
            accounts.assign_station(conn, f"site-{n}", "kiosk-01", community)
            if n == 0:
                accounts.add_staff(conn, "community", "社区", PASSWORD, community)
        accounts.add_staff(conn, "district", "区", PASSWORD, district)
        rows = []
        for n in range(requests):
            category = "found_item" if n % 20 == 0 else "letter" if n % 10 == 1 else CATEGORIES[n % 8]
            data = {"request_id": f"rq-{n}", "category": category, "priority": "normal",
                    "description": "楼道灯坏了，请尽快修。" * 3, "phone_masked": "138****5678"}
            at = NOW - timedelta(minutes=n)
            rows.append((f"site-{n % stations}", "kiosk-01", f"rq-{n}", json.dumps(data, ensure_ascii=False), at,
                         "new" if n % 3 else "done"))
        with conn.cursor() as cursor:
            cursor.executemany("INSERT INTO help_requests (site_id, device_id, request_id, data, submitted_at, status) "
                               "VALUES (%s, %s, %s, %s::jsonb, %s, %s)", rows)
            cursor.executemany(
                "INSERT INTO found_items (id, site_id, device_id, item, found_where, claim_at, published_by, "
                "published_at, returned_at) VALUES (%s, %s, 'kiosk-01', '雨伞', '门口', '前台', 'x', %s, %s)",
                [(f"found-{n}", f"site-{n % stations}", NOW - timedelta(hours=n),
                  NOW if n % 2 else None) for n in range(stations * 5)])
        conn.execute("ANALYZE")
        conn.commit()


def timed(client, path: str, rounds: int) -> tuple[float, float]:  # noqa: ANN001
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    server = make_url(os.environ.get("FLEET_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    name = f"fleet_bench_{secrets.token_hex(4)}"
    admin = fleet_db.conninfo(server.render_as_string(hide_password=False))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        fleet_db.upgrade(url)
        fill(url, args.stations, args.requests)
        app = create_app(load_settings(database_url=url), now=lambda: NOW)
        print(f"{args.stations} stations, {args.requests} requests, {args.stations * 5} found items; "
              f"ms per page (median / p95 of {args.rounds})")
        for user in ("district", "community"):
            client = app.test_client()
            page = client.get("/login").get_data(as_text=True)
            token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
            client.post("/login", data={"username": user, "password": PASSWORD, "csrf_token": token})
            for path in ("/mailbox", "/mailbox?station=site-0/kiosk-01", "/lost-found", "/requests"):
                median, p95 = timed(client, path, args.rounds)
                print(f"  {user:9s} {path:34s} {median:7.1f} / {p95:7.1f}")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
