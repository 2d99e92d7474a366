"""The keyboard's server side (the /ime blueprint) without a browser: answers, refusals, and a
missing handwriting model said plainly while pinyin keeps working."""
from __future__ import annotations

from pathlib import Path

from edge.kiosk_ui.screens.ime import KeyboardBackends
from tests.ime.strokes import CHARACTERS, PAD
from tests.support.screens import app, client, controller, csrf_of, pins  # noqa: F401 - fixtures


def post_strokes(client, strokes, **extra):  # noqa: F811
    token = csrf_of(client, "/help/")
    return client.post("/ime/handwriting", json={"width": PAD, "height": PAD, "strokes": strokes,
                                                 **extra}, headers={"X-CSRFToken": token})


def test_pinyin_candidates_and_bad_input(client) -> None:  # noqa: F811
    answer = client.get("/ime/pinyin?q=shuiguan").get_json()["candidates"]
    assert answer[0] == {"text": "水管", "consumed": 8}
    refused = client.get("/ime/pinyin?q=shui%3B1")
    assert refused.status_code == 400 and "letters a-z" in refused.get_json()["error"]
    assert client.get("/ime/pinyin?q=" + "a" * 61).status_code == 400
    assert client.get("/ime/pinyin?q=lv").status_code == 200  # still answering


def test_handwriting_candidates_need_the_page_token(client) -> None:  # noqa: F811
    assert client.post("/ime/handwriting", json={"width": PAD, "height": PAD,
                                                 "strokes": CHARACTERS["上"]}).status_code != 200
    answer = post_strokes(client, CHARACTERS["上"])
    assert answer.status_code == 200 and answer.get_json()["candidates"][0]["text"] == "上"


def test_bad_strokes_get_a_clear_error(client) -> None:  # noqa: F811
    for strokes in ([], [[["x", 1]]], "上"):
        answer = post_strokes(client, strokes)
        assert answer.status_code == 400 and answer.get_json()["error"]
    token = csrf_of(client, "/help/")
    answer = client.post("/ime/handwriting", data="not json", headers={"X-CSRFToken": token})
    assert answer.status_code == 400 and "JSON" in answer.get_json()["error"]


def test_a_missing_model_is_said_on_the_key_and_in_the_answer(app, client, tmp_path: Path) -> None:  # noqa: F811
    shared = app.extensions["kiosk_ime"]
    app.extensions["kiosk_ime"] = KeyboardBackends(shared.dictionary.path.parent, tmp_path / "gone.model")
    page = client.get("/help/").get_data(as_text=True)
    assert 'data-handwriting-missing="1"' in page
    answer = post_strokes(client, CHARACTERS["上"])
    assert answer.status_code == 503 and answer.get_json()["error"]
    assert client.get("/ime/pinyin?q=shui").status_code == 200
