"""`fleet dev` (what `./dev run` starts) as a person uses it: the supervisor as a real process
with its station, broker, ingest and console; a booking made at the kiosk over HTTP waits,
is approved in the console (log-in and CSRF), and the kiosk shows it taken. Then Ctrl-C
(SIGINT to its process group, as a terminal sends it) stops every process it started."""
from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.support.fleet import count, wait_until
from tests.support.ports import free_port

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(240)]
ROOT = Path(__file__).resolve().parents[2]
RESIDENT_PHONE = "13800138000"  # res-1001 of the demo catalogue


class Browser:
    """A cookie-keeping HTTP client of one site (follows redirects, as a browser does)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=15) as reply:
            return reply.read().decode()

    def post(self, path: str, **form: str) -> str:
        data = urllib.parse.urlencode(form).encode()
        with self.opener.open(self.base + path, data=data, timeout=15) as reply:
            return reply.read().decode()


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def descendants(pid: int) -> dict[int, str]:
    """Every process below `pid` (pid -> command line), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                try:
                    found[child] = (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    found[child] = "?"
                frontier.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_dev_stack_books_at_the_kiosk_approves_in_the_console_and_stops_on_ctrl_c(tmp_path, database_url, pg) -> None:
    kiosk_port, console_port = free_port(), free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("EDGE_", "FLEET_"))},
           "EDGE_DATA_DIR": str(tmp_path / "edge"), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "stack.log"
    with open(log, "wb") as stderr:
        stack = subprocess.Popen(
            [sys.executable, "-m", "fleet", "dev", "--database-url", database_url, "--port", str(kiosk_port),
             "--console-port", str(console_port)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True, process_group=0)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(stack.stdout.readline, "")), daemon=True)
    reader.start()
    children: dict[int, str] = {}
    try:
        wait_until(lambda: "dev: ready; Ctrl-C stops everything\n" in lines or stack.poll() is not None,
                   timeout=120, what="the stack ready")
        assert stack.poll() is None, "".join(lines) + log.read_text()[-3000:]
        login = re.search(r"staff login: (\S+) / (\S+)", "".join(lines))
        assert login is not None, lines
        # The platform published its catalogue copy at start, and the station took it.
        wait_until(lambda: count(pg, "SELECT count(*) FROM events WHERE type = 'command.reply'") >= 1,
                   what="the station's reply to the platform's catalogue.sync")

        kiosk = Browser(f"http://127.0.0.1:{kiosk_port}")
        page = kiosk.get("/identify/?next=/venues/")
        kiosk.post("/identify/phone?next=/venues/", phone=RESIDENT_PHONE, csrf_token=csrf(page))
        venue = next(v for v in re.findall(r'href="/venues/([\w-]+)"', kiosk.get("/venues/")) if v != "mine")
        day = (datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=2)).date().isoformat()
        day_view = f"/venues/{venue}?day={day}"
        page = kiosk.get(day_view)
        start = re.search(r'<li class="slot free">.*?name="start" value="([^"]+)"', page, re.S).group(1)
        kiosk.post(f"/venues/{venue}/book", start=start, csrf_token=csrf(page))
        assert kiosk.get(day_view).count('class="slot pending"') == 1  # waits for staff: no auto-staff

        wait_until(lambda: count(pg, "SELECT count(*) FROM bookings WHERE state = 'pending'") == 1,
                   what="the booking request on the platform")
        console = Browser(f"http://127.0.0.1:{console_port}")
        token = csrf(console.get("/login"))
        console.get("/favicon.ico")  # what a browser asks for on its own; the log-in must survive it
        console.post("/login", username=login.group(1), password=login.group(2), csrf_token=token)
        page = console.get("/bookings")
        booking_id = re.search(r'data-booking="([^"]+)"', page).group(1)
        page = console.post(f"/bookings/{booking_id}/decide", decision="approved", reason="", csrf_token=csrf(page))
        assert "暂无待审批的预约。" in page  # the console speaks Chinese first (ADR 0163)

        wait_until(lambda: kiosk.get(day_view).count('class="slot taken"') == 1, timeout=30,
                   what="the kiosk shows the slot taken")
        assert 'class="slot pending"' not in kiosk.get(day_view)
        assert count(pg, "SELECT count(*) FROM bookings WHERE state = 'approved' AND decided_by = %s",
                     login.group(1)) == 1

        children = descendants(stack.pid)
        commands = " | ".join(children.values())
        for part in ("mosquitto", "fleet ingest", "fleet console", "edge run --simulate"):
            assert part in commands, commands
        os.killpg(stack.pid, signal.SIGINT)  # what Ctrl-C in a terminal does to the foreground job
        assert stack.wait(60) == 0, log.read_text()[-3000:]
        reader.join(10)
        assert lines[-1] == "dev: stopped\n"
        wait_until(lambda: not any(alive(pid) for pid in children), timeout=10,
                   what="every child of the stack gone")
    finally:  # after a failure: stop the stack as a person would, then kill what is left
        children = {**children, **descendants(stack.pid)}
        if stack.poll() is None:
            os.killpg(stack.pid, signal.SIGINT)
            try:
                stack.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(stack.pid, signal.SIGKILL)
                stack.wait(10)
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
