"""The zinnia recogniser with Debian's Tegaki model: real strokes in, characters out."""
from __future__ import annotations

from pathlib import Path

import pytest

from edge.ime import HandwritingRecogniser, HandwritingUnavailable
from edge.ime.handwriting import check_strokes
from tests.ime.strokes import CHARACTERS, PAD


@pytest.fixture(scope="module")
def recogniser() -> HandwritingRecogniser:
    found = HandwritingRecogniser()
    assert found.unavailable_reason() is None, "apt-get install libzinnia0 tegaki-zinnia-simplified-chinese"
    yield found
    found.close()


@pytest.mark.parametrize("character", sorted(CHARACTERS))
def test_a_drawn_character_is_the_first_candidate(recogniser, character: str) -> None:
    found = recogniser.classify(CHARACTERS[character], PAD, PAD)
    assert found[0].text == character
    assert found[0].score > found[1].score


def test_the_pad_size_does_not_matter(recogniser) -> None:
    doubled = [[(x * 2, y * 2) for x, y in stroke] for stroke in CHARACTERS["电"]]
    assert recogniser.classify(doubled, PAD * 2, PAD * 2)[0].text == "电"


def test_a_missing_model_is_said_plainly(tmp_path: Path) -> None:
    missing = HandwritingRecogniser(tmp_path / "handwriting-zh_CN.model")
    assert "model not found" in missing.unavailable_reason()
    with pytest.raises(HandwritingUnavailable):
        missing.classify(CHARACTERS["上"], PAD, PAD)


def test_a_file_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"not a zinnia model" * 10)
    assert HandwritingRecogniser(junk).unavailable_reason()


@pytest.mark.parametrize("strokes, width, height", [
    ([], 300, 300), ("strokes", 300, 300), ([[]], 300, 300), ([[[1, "x"]]], 300, 300),
    ([[[1, 2, 3]]], 300, 300), ([[[1, 2]]], 0, 300), ([[[1, 2]]], 300, 5000),
    ([[[1, 2]]], 300.5, 300), ([[[True, 2]]], 300, 300), ([[[1, 2]]] * 41, 300, 300),
    ([[[1, 2]] * 4001], 300, 300),
])
def test_bad_strokes_are_refused_clearly(strokes, width, height) -> None:
    with pytest.raises(ValueError):
        check_strokes(strokes, width, height)


def test_points_outside_the_pad_are_clamped_into_it() -> None:
    assert check_strokes([[[-5, 10.4], [400, 301]]], 300, 300) == [[(0, 10), (300, 300)]]
