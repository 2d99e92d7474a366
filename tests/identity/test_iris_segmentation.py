"""Where the limbus is found, and how captures that agree only loosely are fused (ADR 0143).

The frames here are drawn ring by ring so that the right answer is known to the pixel: a
dark pupil, an iris, the white of the eye, and the lid lines that real near-infrared eyes
show further out (MMU1's captures had the limbus put on them)."""
from __future__ import annotations

import cv2
import numpy as np

from edge.identity.iris import MIN_COMPARED_BITS, IrisTemplate, extract, hamming_distance
from edge.identity.iris_enrol import enrol_templates
from edge.identity.iris_geometry import Circle, find_limbus
from simulators.camera import SyntheticIris, random_capture, render_eye

CENTRE = (320.0, 240.0)
PUPIL = Circle(*CENTRE, 40.0)
IRIS_R = 85.0


def ring_frame(rings: list[tuple[float, float]], sides: str = "both",
               seed: int = 0) -> np.ndarray:
    """Grey levels by distance from the centre: `rings` is [(outer radius, grey), ...]
    from the inside out; beyond the last, the last grey. With sides="right", rings past the
    limbus are drawn on the right half only (the left keeps the white of the eye)."""
    ys, xs = np.mgrid[0:480, 0:640].astype(np.float32)
    distance = np.hypot(xs - CENTRE[0], ys - CENTRE[1])
    image = np.full(distance.shape, rings[-1][1], np.float32)
    for outer, grey in reversed(rings):
        inside = distance < outer
        if sides == "right" and outer > IRIS_R + 30:
            inside &= xs > CENTRE[0]
        image[inside] = grey
    if sides == "right":  # the left half: the white of the eye runs on
        image[(xs <= CENTRE[0]) & (distance >= IRIS_R)] = 130
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(image, (0, 0), 2.0) + rng.normal(0, 3, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def test_limbus_is_the_first_edge_out_not_a_sharper_lid_line_beyond() -> None:
    # Pupil 25, iris 90, white of the eye 130 (limbus jump 40), then a lash line (95) and
    # lid skin (145): an edge a little stronger than the limbus, at 3.5 pupil radii.
    frame = ring_frame([(PUPIL.r, 25), (IRIS_R, 90), (130, 130), (138, 95), (400, 145)])
    limbus = find_limbus(frame, PUPIL)
    assert limbus is not None
    assert abs(limbus.circle.r - IRIS_R) < 4, limbus
    assert abs(limbus.circle.x - CENTRE[0]) < 4 and abs(limbus.circle.y - CENTRE[1]) < 4


def test_an_edge_on_one_side_only_is_not_the_limbus() -> None:
    # The eye's corner on the right only: iris 90 -> white 105 (a faint limbus), then a
    # strong rise to skin 200 at 120 px on the right side; the left shows white throughout.
    frame = ring_frame([(PUPIL.r, 25), (IRIS_R, 90), (120, 105), (400, 200)], sides="right")
    limbus = find_limbus(frame, PUPIL)
    assert limbus is not None and abs(limbus.circle.r - IRIS_R) < 5, limbus


def test_no_limbus_search_beyond_four_pupil_radii() -> None:
    # Only an outer edge exists, at 4.5 pupil radii: whatever is returned lies inside.
    frame = ring_frame([(PUPIL.r, 25), (180, 90), (400, 140)])
    limbus = find_limbus(frame, PUPIL)
    assert limbus is None or limbus.circle.r < 4.0 * PUPIL.r + 8


def noisy_copies(base: np.ndarray, flip: float, count: int, seed: int) -> list[IrisTemplate]:
    rng = np.random.default_rng(seed)
    mask = np.ones_like(base)
    return [IrisTemplate.from_bits(base ^ (rng.random(base.shape) < flip), mask)
            for _ in range(count)]


def test_loosely_agreeing_captures_still_fuse_into_a_usable_template() -> None:
    """Three captures that each differ from the eye in 14 % of bits agree pairwise at ~0.3
    (under the enrolment agreement) but on all three only for ~65 % of bits once the
    fragile-bit rule has also dropped the code's weak half: the majority is kept instead
    of failing the resident as too_few_captures."""
    rng = np.random.default_rng(3)
    base = rng.random((8, 128, 2)) < 0.5
    captures = noisy_copies(base, 0.14, 3, seed=4)
    # Leave only the first 45 % of each capture's bits valid, as a lid and lashes would.
    mask = np.zeros((8, 128, 2), bool)
    mask[:, :58] = True
    captures = [IrisTemplate.from_bits(t.bits()[0], mask) for t in captures]
    enrolment = enrol_templates(captures)
    assert enrolment.ok, enrolment.code
    assert enrolment.template.valid_bits >= MIN_COMPARED_BITS * 2
    # The majority is closer to the eye than any capture was.
    truth = IrisTemplate.from_bits(base, mask)
    fused_distance, _ = hamming_distance(enrolment.template, truth)
    assert fused_distance < min(hamming_distance(c, truth)[0] for c in captures)


def test_fragile_bits_are_still_masked_when_captures_agree_well() -> None:
    rng = np.random.default_rng(5)
    base = rng.random((8, 128, 2)) < 0.5
    captures = noisy_copies(base, 0.05, 3, seed=6)
    enrolment = enrol_templates(captures)
    assert enrolment.ok
    code, mask = enrolment.template.bits()
    assert not mask.all()  # the bits the three do not all share are masked
    assert (code[mask] == base[mask]).mean() > 0.99


def test_simulated_eye_limbus_lies_on_its_drawn_radius() -> None:
    iris = SyntheticIris(17)
    rng = np.random.default_rng(17)
    for _ in range(4):
        capture = random_capture(rng)
        quality = extract(render_eye(iris, capture)).quality
        assert quality.ok, quality.code
        drawn = iris.iris_radius * capture.scale
        assert abs(quality.metrics["iris_r"] - drawn) < 0.06 * drawn, (quality.metrics, drawn)
