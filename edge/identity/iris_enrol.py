"""Iris enrolment (ADR 0141): one fused template from several captures of one eye.

Owns the enrolment outcome (Enrolment and its messages), the capture counts, the choice of
the captures that agree best with each other and their fusion into one template. The
templates, their distance and the extraction live in edge/identity/iris.py.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from edge.identity.iris import (
    ANGLES,
    BANDS,
    ENROL_AGREEMENT,
    MIN_COMPARED_BITS,
    IrisTemplate,
    Quality,
    QualityLimits,
    extract,
    hamming_distance,
)

ENROL_MESSAGES: dict[str, str] = {
    "ok": "Your eye is enrolled.",
    "too_few_captures": "We need a few more clear pictures of your eye. Please try again.",
    "inconsistent": "The pictures did not agree with each other yet. Please look into the "
                    "camera again for a few more pictures.",
}
MIN_ENROL_CAPTURES = 3
MAX_ENROL_CAPTURES = 6  # then start over: more of the same eye rarely helps
_STABLE_AGREEMENT = 0.75  # share of the fused captures that must agree on a bit to keep it


@dataclass(frozen=True)
class Enrolment:
    code: str
    template: IrisTemplate | None
    qualities: tuple[Quality, ...]

    @property
    def ok(self) -> bool:
        return self.template is not None

    @property
    def message(self) -> str:
        return ENROL_MESSAGES[self.code]


def enrol(frames: list[np.ndarray], limits: QualityLimits = QualityLimits()) -> Enrolment:
    """One fused template from several captures of the same eye (see `enrol_templates`)."""
    extractions = [extract(frame, limits) for frame in frames]
    templates = [e.template for e in extractions if e.template is not None]
    return enrol_templates(templates, tuple(e.quality for e in extractions))


def enrol_templates(templates: list[IrisTemplate], qualities: tuple[Quality, ...] = ()
                    ) -> Enrolment:
    """For a live enrol screen that extracts each frame as it comes (showing the quality
    message) and keeps the good ones. Of the captures given, the three that agree best
    with each other (every pair closer than ENROL_AGREEMENT) are fused, with any other
    capture that agrees with all three; one blinked or badly segmented capture no longer
    spoils the rest. `inconsistent` means: no three agree yet, take another capture (up to
    MAX_ENROL_CAPTURES). Bits the fused captures disagree on are masked (fragile bits)."""
    if len(templates) < MIN_ENROL_CAPTURES:
        return Enrolment("too_few_captures", None, qualities)
    distance, shift = _pairwise(templates)
    chosen = best_agreeing_subset(distance)
    if chosen is None:
        return Enrolment("inconsistent", None, qualities)
    centre = min(chosen, key=lambda i: distance[i, chosen].sum())
    fused = _fuse([templates[i] for i in chosen], [int(shift[i, centre]) for i in chosen])
    if fused.valid_bits < MIN_COMPARED_BITS * 2:
        return Enrolment("too_few_captures", None, qualities)
    return Enrolment("ok", fused, qualities)


def _pairwise(templates: list[IrisTemplate]) -> tuple[np.ndarray, np.ndarray]:
    count = len(templates)
    distance = np.zeros((count, count))
    shift = np.zeros((count, count), dtype=int)
    for i in range(count):
        for j in range(i + 1, count):
            distance[i, j], shift[i, j] = hamming_distance(templates[i], templates[j])
            distance[j, i], shift[j, i] = distance[i, j], -shift[i, j]
    return distance, shift


def best_agreeing_subset(distance: np.ndarray) -> list[int] | None:
    """Indices of the MIN_ENROL_CAPTURES captures whose worst pair is closest, plus every
    other capture that agrees with all of them; None when no such three agree."""
    count = distance.shape[0]
    best: tuple[float, tuple[int, ...]] | None = None
    for trio in itertools.combinations(range(count), MIN_ENROL_CAPTURES):
        worst = max(distance[i, j] for i, j in itertools.combinations(trio, 2))
        if best is None or worst < best[0]:
            best = (worst, trio)
    if best is None or best[0] >= ENROL_AGREEMENT:
        return None
    chosen = list(best[1])
    for other in range(count):
        if other not in chosen and all(distance[other, i] < ENROL_AGREEMENT for i in chosen):
            chosen.append(other)
    return chosen


def _fuse(templates: list[IrisTemplate], shifts: list[int]) -> IrisTemplate:
    votes = np.zeros((BANDS, ANGLES, 2))
    seen = np.zeros((BANDS, ANGLES, 2))
    for template, turn in zip(templates, shifts):
        code, mask = template.bits()
        code, mask = np.roll(code, turn, axis=1), np.roll(mask, turn, axis=1)
        votes += code & mask
        seen += mask
    ones = np.divide(votes, seen, out=np.full_like(votes, 0.5), where=seen > 0)
    agreement = np.maximum(ones, 1 - ones)
    enough = seen >= max(2, math.ceil(len(templates) / 2))
    fused = IrisTemplate.from_bits(ones > 0.5, enough & (agreement >= _STABLE_AGREEMENT))
    if fused.valid_bits >= MIN_COMPARED_BITS * 2:
        return fused
    # Captures of a smooth or lash-crossed iris agree on too few bits for the fragile-bit
    # rule: keep every bit a majority agrees on (ties stay masked). Only the enrolment
    # agreement decides who enrols; this decides how much of them the template keeps.
    return IrisTemplate.from_bits(ones > 0.5, enough & (agreement > 0.5))
