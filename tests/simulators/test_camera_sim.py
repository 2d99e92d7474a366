"""The simulated camera: stable synthetic people, varied captures, a queue of scenes."""
from __future__ import annotations

import numpy as np
import pytest

from edge.drivers.qr import QrDecoder
from edge.identity.iris import extract
from simulators.camera import (
    EyeCapture,
    SimulatedCamera,
    SyntheticIris,
    random_capture,
    render_empty_scene,
    render_eye,
)


def test_a_person_keeps_their_iris_and_people_differ() -> None:
    assert np.array_equal(SyntheticIris(5).texture, SyntheticIris(5).texture)
    assert not np.array_equal(SyntheticIris(5).texture, SyntheticIris(6).texture)


def test_captures_are_reproducible_and_vary() -> None:
    iris = SyntheticIris(1)
    capture = EyeCapture(seed=4)
    assert np.array_equal(render_eye(iris, capture), render_eye(iris, capture))
    rng = np.random.default_rng(0)
    first, second = render_eye(iris, random_capture(rng)), render_eye(iris, random_capture(rng))
    assert first.shape == (480, 640) and first.dtype == np.uint8
    assert np.abs(first.astype(int) - second.astype(int)).mean() > 3


def test_capture_overrides_are_kept() -> None:
    capture = random_capture(np.random.default_rng(1), blur_sigma=7.0, offset=(10.0, 0.0))
    assert capture.blur_sigma == 7.0 and capture.offset == (10.0, 0.0)


def test_scenes_play_in_order_then_the_empty_kiosk() -> None:
    camera = SimulatedCamera(fps=None)
    decoder = QrDecoder()
    camera.show_qr("one", frames=2)
    camera.show_qr("two", frames=1)
    seen = [decoder.decode(camera.read()) for _ in range(4)]
    assert seen == [["one"], ["one"], ["two"], []]
    assert camera.frames_read == 4


def test_a_held_scene_lasts_until_the_next_one() -> None:
    camera = SimulatedCamera(size=(1280, 720), fps=None)
    decoder = QrDecoder()
    camera.show_qr("held")
    assert [decoder.decode(camera.read()) for _ in range(3)] == [["held"]] * 3
    camera.show_nothing()
    frame = camera.read()
    assert frame.shape == (720, 1280, 3) and decoder.decode(frame) == []


def test_eye_scenes_are_live_captures_the_pipeline_accepts() -> None:
    camera = SimulatedCamera(fps=None, seed=9)
    camera.show_eye(3, frames=2)
    first, second = camera.read(), camera.read()
    assert first.shape == (480, 640, 3) and not np.array_equal(first, second)
    assert extract(first).quality.ok and extract(second).quality.ok


def test_eye_scene_parameters_reach_the_capture() -> None:
    camera = SimulatedCamera(fps=None)
    camera.show_eye(3, frames=1, blur_sigma=7.0)
    assert extract(camera.read()).quality.code == "blurred"


def test_bad_frame_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        SimulatedCamera(fps=None).show_nothing(frames=0)


def test_empty_scene_is_deterministic() -> None:
    assert np.array_equal(render_empty_scene(seed=1), render_empty_scene(seed=1))
