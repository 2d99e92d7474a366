"""What a screen costs to render and paint, counted rather than timed (ADR 0129): the on-screen
keyboard only on screens with a text field, one signed CSRF token per page."""
from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from edge.kiosk_ui.screens.ime import needs_keyboard
from tests.support.screens import app, client, controller, csrf_of, pins  # noqa: F401 - fixtures

pytestmark = pytest.mark.timeout(60)
KEYBOARD_PARTS = ('id="keyboard"', "keyboard.js", "keyboard.css")


@pytest.mark.parametrize("path", ["/", "/pickup/", "/venues/", "/activities/", "/notices/",
                                  "/services/", "/courier/", "/identify/"])
def test_screens_without_a_text_field_leave_the_keyboard_out(client: FlaskClient, path: str) -> None:
    page = client.get(path).get_data(as_text=True)
    assert "<main" in page and "</html>" in page, path
    assert not needs_keyboard(page), path
    assert not [part for part in KEYBOARD_PARTS if part in page], path


@pytest.mark.parametrize("path", ["/help/", "/feedback/"])
def test_screens_with_a_text_field_have_the_keyboard(client: FlaskClient, path: str) -> None:
    page = client.get(path).get_data(as_text=True)
    assert [part for part in KEYBOARD_PARTS if part in page] == list(KEYBOARD_PARTS), path


def test_which_fields_the_keyboard_serves() -> None:
    assert needs_keyboard('<form><textarea id="d"></textarea></form>')
    assert needs_keyboard('<input id="a" name="a" type="text" maxlength="200">')
    assert needs_keyboard("<input id=a name=a>")  # no type: a text field
    assert needs_keyboard("<INPUT TYPE='TEXT' id=w>")
    assert not needs_keyboard('<input id="code" type="text" inputmode="none" maxlength="8">')
    assert not needs_keyboard('<input id="phone" type="tel" class="code-input" inputmode="none">')
    assert not needs_keyboard('<input type="hidden" name="csrf_token" value="x">')
    assert not needs_keyboard('<input id="token" type="text" data-keyboard="off">')
    assert not needs_keyboard('<input type="radio" name="category" value="repair">')
    assert not needs_keyboard("<p>textarea and input are words here</p>")


def test_one_signed_csrf_token_per_page_and_it_is_accepted(client: FlaskClient) -> None:
    page = client.get("/help/").get_data(as_text=True)
    tokens = set(re.findall(r'name="csrf_token" value="([^"]+)"', page))
    tokens |= set(re.findall(r'data-csrf="([^"]+)"', page))
    assert len(tokens) == 1
    accepted = client.post("/lang", data={"next": "/", "csrf_token": tokens.pop()},
                           follow_redirects=True)
    assert '<html lang="en"' in accepted.get_data(as_text=True)
    assert csrf_of(client)  # the next page has one too
