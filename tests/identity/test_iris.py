"""The iris pipeline on synthetic eyes from the camera simulator."""
from __future__ import annotations

import builtins

import cv2
import numpy as np
import pytest

from edge.identity.iris import (
    MATCH_THRESHOLD,
    QUALITY_MESSAGES,
    decide,
    extract,
    hamming_distance,
    iris_quality_report,
)
from edge.identity.iris_enrol import enrol
from edge.identity.templates import IrisGallery
from simulators.camera import SyntheticIris, random_capture, render_eye


def captures(person: int, count: int, seed: int, **fixed: object) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    iris = SyntheticIris(person)
    return [render_eye(iris, random_capture(rng, **fixed)) for _ in range(count)]


@pytest.fixture(scope="module")
def enrolled_gallery() -> tuple[IrisGallery, dict[int, object]]:
    gallery, templates = IrisGallery(), {}
    for person in range(1, 6):
        result = enrol(captures(person, 3, seed=person))
        assert result.ok, (person, result.code, [q.code for q in result.qualities])
        templates[person] = result.template
        gallery.add(f"res-{person}", result.template)
    return gallery, templates


def test_new_capture_of_an_enrolled_person_matches(enrolled_gallery) -> None:
    gallery, _ = enrolled_gallery
    for person in (1, 3, 5):
        probe = extract(captures(person, 1, seed=1000 + person)[0])
        assert probe.quality.ok, probe.quality.code
        match = gallery.search(probe.template)
        assert match.subject_id == f"res-{person}" and match.decision == "match", match


def test_impostor_is_rejected(enrolled_gallery) -> None:
    gallery, _ = enrolled_gallery
    for stranger in (40, 41, 42):
        probe = extract(captures(stranger, 1, seed=stranger)[0])
        assert probe.quality.ok
        assert gallery.search(probe.template).decision == "no_match"


def test_same_person_turned_head_still_matches(enrolled_gallery) -> None:
    _, templates = enrolled_gallery
    probe = extract(captures(2, 1, seed=77, rotation_deg=12.0)[0]).template
    distance, shift = hamming_distance(probe, templates[2])
    assert distance < MATCH_THRESHOLD and shift != 0


def test_enrolment_refuses_captures_of_different_people() -> None:
    frames = captures(7, 2, seed=1) + captures(8, 1, seed=2)
    result = enrol(frames)
    assert not result.ok and result.code == "inconsistent" and result.message


def test_enrolment_needs_enough_good_captures() -> None:
    frames = captures(7, 2, seed=3) + captures(7, 2, seed=4, blur_sigma=12.0)
    result = enrol(frames)
    assert not result.ok and result.code == "too_few_captures"
    assert [q.code for q in result.qualities].count("blurred") == 2


@pytest.mark.parametrize("fixed, code", [
    ({"blur_sigma": 12.0}, "blurred"),
    ({"offset": (260.0, 0.0)}, "off_centre"),
    ({"offset": (0.0, 175.0)}, "off_centre"),
    ({"upper_lid": 0.05, "lower_lid": 0.35}, "covered"),
    ({"scale": 0.5}, "too_far"),
    ({"scale": 1.6, "offset": (0.0, 0.0)}, "too_close"),
])
def test_quality_gates_refuse_with_a_plain_message(fixed: dict, code: str) -> None:
    quality = extract(captures(9, 1, seed=5, **fixed)[0]).quality
    assert quality.code == code and not quality.ok
    assert quality.message == QUALITY_MESSAGES[code] and "." in quality.message


def test_no_eye_in_an_empty_scene() -> None:
    blank = np.full((480, 640), 150, np.uint8)
    assert extract(blank).quality.code == "no_eye"
    assert extract(cv2.cvtColor(blank, cv2.COLOR_GRAY2BGR)).quality.code == "no_eye"


def test_unusable_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError):
        extract(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError):
        extract(np.zeros((480, 640), np.float32))


def test_quality_report_for_diagnostics() -> None:
    report = iris_quality_report(captures(9, 1, seed=6)[0])
    assert report["ok"] is True and report["code"] == "ok"
    assert {"iris_r", "pupil_r", "sharpness", "usable"} <= set(report)


def test_decision_bands() -> None:
    assert decide(MATCH_THRESHOLD - 0.01) == "match"
    assert decide(MATCH_THRESHOLD + 0.01) == "near_miss"
    assert decide(0.45) == "no_match"


def test_pipeline_writes_nothing_to_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    frames = captures(11, 3, seed=8)

    def refuse(*_args, **_kwargs):
        raise AssertionError("the iris pipeline tried to write a file")

    monkeypatch.setattr(cv2, "imwrite", refuse)
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda file, mode="r", *a, **k: (
        refuse() if any(c in mode for c in "wax+") else real_open(file, mode, *a, **k)))
    assert enrol(frames).ok
