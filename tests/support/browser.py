"""Debian's Chromium driven by Playwright: one browser for the whole test session.

Playwright's sync API runs its own event loop; two session browsers in one process (say, a
test module importing the fixture under its own name) collide, so the fixture lives once,
in tests/conftest.py.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
LANDSCAPE = {"width": 1280, "height": 800}
PORTRAIT = {"width": 1080, "height": 1920}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
RESIDENT_PHONE = "13800138000"  # a demo resident (simulators/demo_catalogue.json)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
                 # A fake microphone (a beep) that needs no permission prompt: voice-note tests.
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


def ensure_chromium() -> None:
    """Install Debian's chromium when missing and we are root; never a silent skip."""
    if Path(CHROMIUM).exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium fonts-noto-cjk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium", "fonts-noto-cjk"], check=True, env=env)


def launch_browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ensure_chromium()
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def shoot(page: Any, name: str) -> None:
    """Screenshots for a reviewer, landscape and portrait (artifacts/ is gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-1280x800.png"), full_page=True)
    page.set_viewport_size(PORTRAIT)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-1080x1920.png"), full_page=True)
    page.set_viewport_size(LANDSCAPE)


def assert_accessible(page: Any) -> None:
    """axe-core in the page: no serious or critical violations."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [f"{v['id']} ({v['impact']}): {v['help']} -> "
           f"{[n['target'] for n in v['nodes']][:3]}"
           for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, "\n".join(bad)


def type_on_keypad(page: Any, digits: str) -> None:
    for digit in digits:
        page.locator(".keypad").get_by_role("button", name=digit, exact=True).click()
