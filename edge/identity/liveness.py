"""Presence of a live eye, with the kiosk's own near-infrared illuminator (ADR 0142).

A photo or a phone screen held to the camera can show an enrolled iris well enough to
match. Three checks, each on what a flat picture cannot do or cannot hide:

- glint: the cornea is a convex mirror, so each illuminator LED makes a small bright dot
  on the eye, and switching from the left LED to the right one moves the dot sideways by
  a fraction of the iris radius. A print carries the photographed dot, which stays put; a
  glossy screen mirrors the LED as a large patch that moves far more.
- pupil: the switch also raises the light; a live pupil narrows within a second. A print
  cannot; a replayed video does not follow the kiosk's timing.
- artefacts: print halftone and screen pixel grids put sharp, isolated peaks into the
  picture's fine-detail spectrum, which skin and iris texture do not have.

Pure functions on frames and circles; the service drives the illuminator and the camera.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from edge.identity.iris_geometry import Circle, find_limbus, find_pupil, refine_pupil


@dataclass(frozen=True)
class LivenessLimits:
    # Where the left->right LED switch puts the corneal glint, in iris radii (the kiosk's
    # LEDs sit ~6 cm either side of the lens at ~25 cm: a cornea of radius 7.8 mm moves
    # the glint ~1.9 mm, about 0.3 iris radii). A flat mirror moves it ~10x further.
    min_glint_shift: float = 0.1
    max_glint_shift: float = 0.6
    max_glint_rise: float = 0.15  # vertical drift allowed, in iris radii
    max_glint_area: float = 0.02  # a glint covers less than this share of the iris disc
    # A live pupil narrows by 10-30% within a second of more light; 5% is the least
    # change told apart from measurement noise (pupil radius +-1.5% frame to frame).
    min_pupil_response: float = 0.05
    # Fine-spectrum peak over its p99: real eyes (MMU1) up to ~12, screens 15-190, paper
    # prints mostly 25-55 (ADR 0142); the illuminator checks catch what this misses.
    max_artefact_peak: float = 14.0


@dataclass(frozen=True)
class Liveness:
    ok: bool
    cause: str  # "live", "glint_static", "glint_not_found", "pupil_static", "artefacts"
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class EyeGeometry:
    pupil: Circle
    iris: Circle


def eye_geometry(gray: np.ndarray) -> EyeGeometry | None:
    found = find_pupil(gray)
    if found is None:
        return None
    pupil, _ = refine_pupil(gray, found[0])
    limbus = find_limbus(gray, pupil)
    return None if limbus is None else EyeGeometry(pupil, limbus.circle)


def glints(gray: np.ndarray, eye: EyeGeometry, limits: LivenessLimits = LivenessLimits()
           ) -> list[tuple[float, float]]:
    """Small saturated dots on the iris disc (pupil included), from the pupil centre in
    iris radii: the eye may move a little between two frames, the glint moves with it."""
    iris, pupil = eye.iris, eye.pupil
    x0, y0 = max(int(iris.x - iris.r), 0), max(int(iris.y - iris.r), 0)
    x1 = min(int(iris.x + iris.r) + 1, gray.shape[1])
    y1 = min(int(iris.y + iris.r) + 1, gray.shape[0])
    patch = gray[y0:y1, x0:x1]
    bright = (patch >= 235).astype(np.uint8)
    count, _, stats, centres = cv2.connectedComponentsWithStats(bright)
    largest = limits.max_glint_area * math.pi * iris.r**2
    found = []
    for label in range(1, count):
        x, y = centres[label][0] + x0, centres[label][1] + y0
        if stats[label, cv2.CC_STAT_AREA] <= largest and math.hypot(x - iris.x, y - iris.y) < iris.r:
            found.append((float((x - pupil.x) / iris.r), float((y - pupil.y) / iris.r)))
    return found


def glint_shift(before: list[tuple[float, float]], after: list[tuple[float, float]],
                limits: LivenessLimits = LivenessLimits()) -> float | None:
    """The sideways move, in iris radii, of the glint that moved as the LED switch should
    move it (rightwards, barely up or down); None when none did."""
    best = None
    for bx, by in before:
        for ax, ay in after:
            dx, dy = ax - bx, ay - by
            if limits.min_glint_shift <= dx <= limits.max_glint_shift and abs(dy) <= limits.max_glint_rise:
                best = dx if best is None else max(best, dx)
    return best


def artefact_peak(gray: np.ndarray, iris: Circle) -> float:
    """The strongest fine-detail frequency over the band's 99th percentile, on a square
    around the iris: a halftone or pixel grid is a few sharp peaks far above the rest of
    the band; natural texture spreads its energy, so its top 1% are alike."""
    half = int(iris.r * 0.7)
    x, y = int(iris.x), int(iris.y)
    patch = gray[max(y - half, 0):y + half, max(x - half, 0):x + half].astype(np.float32)
    if min(patch.shape) < 32:
        return 0.0
    detail = patch - cv2.GaussianBlur(patch, (0, 0), 3.0)
    window = np.outer(np.hanning(patch.shape[0]), np.hanning(patch.shape[1]))
    power = np.abs(np.fft.fftshift(np.fft.fft2(detail * window))) ** 2
    fy = np.fft.fftshift(np.fft.fftfreq(patch.shape[0]))[:, None]
    fx = np.fft.fftshift(np.fft.fftfreq(patch.shape[1]))[None, :]
    radius = np.hypot(fx, fy)
    band = (radius > 0.12) & (radius < 0.5)  # periods of 2 to ~8 pixels
    values = power[band]
    return float(values.max() / max(np.percentile(values, 99), 1e-9))


def judge(before: np.ndarray, before_eye: EyeGeometry, after: list[np.ndarray],
          limits: LivenessLimits = LivenessLimits()) -> Liveness:
    """`before`: a good frame under the first LED pattern; `after`: the frames of up to a
    second after switching to the second (brighter) pattern, in order."""
    iris = before_eye.iris
    metrics = {"artefact_peak": artefact_peak(before, iris)}
    if metrics["artefact_peak"] > limits.max_artefact_peak:
        return Liveness(False, "artefacts", metrics)
    first = glints(before, before_eye, limits)
    ratio_before = before_eye.pupil.r / iris.r
    shift, smallest = None, ratio_before
    for frame in after:
        eye = eye_geometry(frame)
        if eye is None:
            continue
        if shift is None:
            shift = glint_shift(first, glints(frame, eye, limits), limits)
        smallest = min(smallest, eye.pupil.r / eye.iris.r)
    response = 1 - smallest / ratio_before
    metrics.update({"glint_shift": -1.0 if shift is None else shift, "pupil_response": response})
    if shift is None:
        return Liveness(False, "glint_static" if first else "glint_not_found", metrics)
    if response < limits.min_pupil_response:
        return Liveness(False, "pupil_static", metrics)
    return Liveness(True, "live", metrics)
