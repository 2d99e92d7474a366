"""Iris geometry (ADR 0041): where the eye is in a frame and how its ring is sampled.

Owns the grayscale check, the pupil (darkest round blob, then refined on its edge), the
limbus (integro-differential search around the pupil), Daugman's rubber-sheet unwrap and
the noise mask of lids, lashes and reflections on the unwrapped sheet. Knows nothing of
codes, thresholds or quality gates (edge/identity/iris.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

_UNWRAP_RADII = 32
_UNWRAP_ANGLES = 256

@dataclass(frozen=True)
class Circle:
    x: float
    y: float
    r: float


def gray_frame(frame: np.ndarray) -> np.ndarray:
    """A camera frame as 8-bit grayscale; ValueError for anything else (see `extract`)."""
    return _gray(frame)


def _gray(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 3:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if frame.dtype != np.uint8 or frame.ndim != 2 or min(frame.shape) < 64:
        raise ValueError("expected an 8-bit grayscale or BGR image of at least 64x64")
    return frame


def find_pupil(gray: np.ndarray) -> tuple[Circle, float] | None:
    """The darkest large blob as a circle, with its roundness (1 = a full disc; a lid
    across the pupil makes it less). Worked at half size: lashes vanish in the opening."""
    small = cv2.GaussianBlur(cv2.resize(gray, None, fx=0.5, fy=0.5,
                                        interpolation=cv2.INTER_AREA), (5, 5), 0)
    # The 0.5th percentile of grey, from the histogram (a sort of the frame costs ~1 ms).
    counts = np.cumsum(cv2.calcHist([small], [0], None, [256], [0, 256]).ravel())
    darkest = float(np.searchsorted(counts, 0.005 * counts[-1]))
    _, dark = cv2.threshold(small, darkest + 25, 255, cv2.THRESH_BINARY_INV)
    dark = cv2.morphologyEx(dark, cv2.MORPH_OPEN, cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (7, 7)))
    contours, _ = cv2.findContours(dark, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    best: tuple[float, Circle, float] | None = None
    largest = math.pi * (min(small.shape) / 4) ** 2  # a pupil never fills half the frame
    for contour in contours:
        if not 60 <= cv2.contourArea(cv2.convexHull(contour)) <= largest * 4:
            continue
        found = _disc_in_blob(contour)
        if found is None:
            continue
        (x, y, radius), roundness = found
        area = math.pi * radius**2
        if area > largest or roundness < _MIN_PARTIAL_ROUNDNESS:
            continue
        # A round blob beats a bigger ragged one (a lash line, a shadow).
        rank = area * (4.0 if roundness >= _MIN_ROUNDNESS else 1.0)
        if best is None or rank > best[0]:
            best = (rank, Circle(2 * x + 0.5, 2 * y + 0.5, 2 * radius), roundness)
    return None if best is None else (best[1], best[2])


def _disc_in_blob(contour: np.ndarray) -> tuple[tuple[float, float, float], float] | None:
    """The blob's round core as (x, y, radius) and its roundness: the convex hull's area
    over its enclosing circle's (1 = a full disc; a lid cutting the pupil in half leaves
    about 0.5). Lashes that touch the pupil join the dark blob as thin strands; an opening
    with a disc about half the pupil's inscribed radius removes them (a convex hull would
    swallow them and call an open eye covered) and leaves a pupil, whole or cut by a lid,
    as it is. The hull then closes notches that reflections bite into the edge."""
    x0, y0, w, h = cv2.boundingRect(contour)
    blob = np.zeros((h + 2, w + 2), np.uint8)
    cv2.drawContours(blob, [contour], -1, 255, -1, offset=(1 - x0, 1 - y0))  # holes filled
    blob = cv2.morphologyEx(blob, cv2.MORPH_CLOSE, cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (5, 5)))
    inside = cv2.distanceTransform(blob, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    inscribed = float(inside.max())
    if inscribed < 3:
        return None
    # Opening with a disc, by two distance transforms (a morphological opening with a
    # 30-px disc cost ~1 ms): the disc's centres are where it fits, the core is every
    # pixel within its radius of one.
    radius = max(int(inscribed * 0.6), 1)
    centres = (inside <= radius).astype(np.uint8)
    core = (cv2.distanceTransform(centres, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) <= radius
            ).astype(np.uint8) * 255
    core = cv2.dilate(core, np.ones((3, 3), np.uint8)) & blob  # the opening's own bites back
    parts, _ = cv2.findContours(core, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not parts:
        return None
    hull = cv2.convexHull(max(parts, key=cv2.contourArea))
    area = cv2.contourArea(hull)
    (x, y), enclosing = cv2.minEnclosingCircle(hull)
    if area < 1 or enclosing < 2:
        return None
    roundness = area / (math.pi * enclosing**2)
    return (x + x0 - 1, y + y0 - 1, math.sqrt(area / math.pi)), roundness


_MIN_ROUNDNESS = 0.7  # a full-disc pupil; ranks round blobs above ragged ones
_MIN_PARTIAL_ROUNDNESS = 0.3


@dataclass(frozen=True)
class Limbus:
    circle: Circle
    jump: float  # grey levels gained across the limbus on the side sectors
    sclera_contrast: float  # white of the eye beside the iris over the iris near the edge


# The limbus is searched between these multiples of the pupil radius. Real eyes: a pupil of
# 2-7 mm in an iris of ~12 mm; MMU1 (450 captures) measured 1.7-3.3. Beyond 4 the circle
# lies on a lid crease or the eye's outline, never on an iris (ADR 0143).
LIMBUS_RATIO = (1.5, 4.0)
# Candidate centres: sideways only, +-6 px around the pupil's centre in steps of 3 (the iris
# sits up to ~7 px off the pupil sideways on MMU1, consistently per eye). The side sectors
# barely see the vertical, so searching it there only added noise: the circle fitted to the
# rays afterwards sets the vertical and the last pixels.
_LIMBUS_OFFSETS = np.arange(-6.0, 6.5, 3.0, dtype=np.float32)
# Side sectors, 16 rays each; image y grows downwards, so they lean below the horizon, away
# from the upper lid. Right of the pupil first, then left.
_SIDE_ANGLES = np.deg2rad(np.r_[np.arange(-30, 46, 5), np.arange(135, 211, 5)]).astype(
    np.float32)
_SIDE_COS, _SIDE_SIN = np.cos(_SIDE_ANGLES), np.sin(_SIDE_ANGLES)
# Going out from the pupil, the first edge at least this share of the strongest one is the
# limbus: lid lines and the eye's outline lie further out and can be sharper.
_INNERMOST_SHARE = 0.8


def find_limbus(gray: np.ndarray, pupil: Circle) -> Limbus | None:
    """Daugman's integro-differential operator on the two side sectors (lids cover top and
    bottom): the circle, around centres near the pupil's, where brightness jumps on both
    sides at once. Scoring the weaker side, not the sum, keeps a lid crease or the eye's
    outline (a strong edge on one side only) from winning over a softer limbus. Returns
    what it found and how clearly; the gates judge the figures."""
    radii = np.arange(pupil.r * LIMBUS_RATIO[0], pupil.r * LIMBUS_RATIO[1], 1.0,
                      dtype=np.float32)
    if radii.size < 12:
        return None
    count, rays = _LIMBUS_OFFSETS.size, _SIDE_ANGLES.size
    # Samples laid out (centre, radius, ray) so the median over rays runs along the last,
    # contiguous axis.
    map_x = (pupil.x + _LIMBUS_OFFSETS[:, None, None]
             + radii[None, :, None] * _SIDE_COS[None, None, :]).reshape(-1, rays)
    map_y = np.broadcast_to(pupil.y + radii[:, None] * _SIDE_SIN[None, :],
                            (count, radii.size, rays)).reshape(-1, rays)
    samples = cv2.remap(gray, map_x, np.ascontiguousarray(map_y), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
    # Median over each side's rays: a lash or a reflection on one ray does not move it.
    profile = np.median(samples.reshape(count, radii.size, 2, rays // 2), axis=-1)
    # Smoothed along the radius only (a kernel one row high: rows are other centres/sides).
    profile = cv2.GaussianBlur(
        np.ascontiguousarray(profile.transpose(0, 2, 1), dtype=np.float32).reshape(
            -1, radii.size), (13, 1), 2.0).reshape(count, 2, radii.size)
    jump = profile[..., 4:] - profile[..., :-4]
    centre, ir = _innermost_strong(jump.min(axis=1))
    both = profile[centre].mean(axis=0)
    # Beside an open iris lies the white of the eye, brighter than the iris. A nearly
    # closed eye shows lid skin there instead, about as bright as what lies inside.
    inside = float(np.median(both[max(ir - 12, 0):ir + 1]))
    outside = float(np.median(both[ir + 6:ir + 16])) if ir + 6 < radii.size - 4 else inside
    coarse = Circle(float(pupil.x + _LIMBUS_OFFSETS[centre]), pupil.y, float(radii[ir] + 2))
    return Limbus(_refine_limbus(gray, coarse, _SIDE_ANGLES), float(both[ir + 4] - both[ir]),
                  outside - inside)


def _innermost_strong(score: np.ndarray) -> tuple[int, int]:
    """(centre, radius) indices of the innermost radius whose best score over the centres
    is a local peak of at least _INNERMOST_SHARE of the strongest."""
    by_radius = score.max(axis=0)
    inner = by_radius[1:-1]
    peaks = np.flatnonzero((inner >= by_radius[:-2]) & (inner >= by_radius[2:])
                           & (inner >= _INNERMOST_SHARE * by_radius.max())) + 1
    ir = int(peaks[0]) if peaks.size else int(np.argmax(by_radius))
    return int(np.argmax(score[:, ir])), ir


def _refine_limbus(gray: np.ndarray, coarse: Circle, angles: np.ndarray) -> Circle:
    """A circle fitted to where each side ray crosses the limbus (the coarse search moves
    the centre in steps of pixels and sees the vertical only faintly)."""
    radii = np.arange(coarse.r - 8, coarse.r + 8, 0.5, dtype=np.float32)
    map_x = coarse.x + np.cos(angles)[:, None] * radii[None, :]
    map_y = coarse.y + np.sin(angles)[:, None] * radii[None, :]
    rays = cv2.remap(gray, map_x, map_y, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    rise = np.diff(cv2.GaussianBlur(rays, (7, 1), 0), axis=1)
    strong = rise.max(axis=1) > 2.0  # a lid or lash on the ray hides the limbus
    if strong.sum() < 8:
        return coarse
    edge = radii[:-1][np.argmax(rise[strong], axis=1)] + 0.25
    fitted = _fit_circle(coarse.x + np.cos(angles[strong]) * edge,
                         coarse.y + np.sin(angles[strong]) * edge)
    if abs(fitted.r - coarse.r) > 6 or math.hypot(fitted.x - coarse.x, fitted.y - coarse.y) > 10:
        return coarse
    return fitted


_PUPIL_ANGLES = np.linspace(0, 2 * np.pi, 48, endpoint=False, dtype=np.float32)
_PUPIL_COS, _PUPIL_SIN = np.cos(_PUPIL_ANGLES), np.sin(_PUPIL_ANGLES)


def refine_pupil(gray: np.ndarray, pupil: Circle) -> tuple[Circle, float]:
    """The pupil circle fitted to the steepest point of each ray across its edge, and the
    edge's sharpness: steepest step over step height, about 1/(2.5 sigma) for an edge
    blurred by sigma pixels, whatever the lighting or the iris texture."""
    reach = min(48.0, pupil.r * 0.85)  # wide enough to see both plateaus of a soft edge
    radii = np.arange(pupil.r - reach, pupil.r + reach, 0.5, dtype=np.float32)
    cos, sin = _PUPIL_COS, _PUPIL_SIN
    map_x = pupil.x + cos[:, None] * radii[None, :]
    map_y = pupil.y + sin[:, None] * radii[None, :]
    rays = cv2.remap(gray, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # Median over rays along a contiguous axis (uint8: a quarter of the bytes to move).
    profile = np.median(np.ascontiguousarray(rays.T), axis=1).astype(np.float32)
    rays = rays.astype(np.float32)
    step = float(np.median(profile[-6:]) - np.median(profile[:6]))
    if step < 10:
        return pupil, 0.0
    # Steepest slope near the edge only (iris texture further out can be steeper than a
    # blurred edge), on a lightly smoothed profile (pixel noise is steep too).
    slope = np.diff(cv2.GaussianBlur(profile.reshape(1, -1), (0, 0), 1.0).ravel()) / 0.5
    around_edge = np.abs(radii[:-1] + 0.25 - pupil.r) <= 8
    sharpness = float(np.max(slope[around_edge]) / step)
    clean = rays.max(axis=1) < 220  # a reflection on the ray would pull the edge
    if clean.sum() < 12:
        return pupil, sharpness
    # The first guess is within a few pixels: look for the edge only there, so strong
    # iris texture further out cannot pull it.
    near = np.abs(radii[:-1] - pupil.r) <= 5
    rise = np.diff(cv2.GaussianBlur(rays[clean], (5, 1), 0), axis=1)[:, near]
    edge = radii[:-1][near][np.argmax(rise, axis=1)]
    fitted = _fit_circle(pupil.x + cos[clean] * (edge + 0.25),
                         pupil.y + sin[clean] * (edge + 0.25))
    if abs(fitted.r - pupil.r) > 6 or math.hypot(fitted.x - pupil.x, fitted.y - pupil.y) > 6:
        return pupil, sharpness
    return fitted, sharpness


def _fit_circle(xs: np.ndarray, ys: np.ndarray) -> Circle:
    """Least-squares circle through points (Kasa's algebraic fit)."""
    design = np.column_stack([xs, ys, np.ones_like(xs)])
    (a, b, c), *_ = np.linalg.lstsq(design, xs**2 + ys**2, rcond=None)
    x, y = a / 2, b / 2
    return Circle(float(x), float(y), float(math.sqrt(max(c + x * x + y * y, 0.0))))


# The rubber sheet's fixed parts: rows at these fractions from the pupil edge to the limbus,
# columns at these angles.
_SHEET_RHO = np.linspace(0.06, 0.94, _UNWRAP_RADII, dtype=np.float32)[:, None]
_SHEET_THETA = np.linspace(0, 2 * np.pi, _UNWRAP_ANGLES, endpoint=False, dtype=np.float32)
_SHEET_COS, _SHEET_SIN = np.cos(_SHEET_THETA)[None, :], np.sin(_SHEET_THETA)[None, :]


def unwrap(gray: np.ndarray, pupil: Circle, iris: Circle) -> np.ndarray:
    """Daugman's rubber sheet: rows from the pupil edge to the limbus, columns around.
    Smoothed over the iris's square only (the whole frame cost 4x the time)."""
    rho, cos, sin = _SHEET_RHO, _SHEET_COS, _SHEET_SIN
    map_x = (1 - rho) * (pupil.x + pupil.r * cos) + rho * (iris.x + iris.r * cos)
    map_y = (1 - rho) * (pupil.y + pupil.r * sin) + rho * (iris.y + iris.r * sin)
    height, width = gray.shape
    x0 = min(max(int(map_x.min()) - 4, 0), width - 1)
    y0 = min(max(int(map_y.min()) - 4, 0), height - 1)
    x1, y1 = max(int(map_x.max()) + 5, x0 + 1), max(int(map_y.max()) + 5, y0 + 1)
    smooth = cv2.GaussianBlur(gray[y0:y1, x0:x1], (0, 0), 1.0)
    return cv2.remap(smooth, map_x - x0, map_y - y0, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE).astype(np.float32)


def noise_mask(unwrapped: np.ndarray) -> np.ndarray:
    """True where the sheet shows no iris: specular reflections, eyelid skin, lashes."""
    # Reference: the inner half of the side sectors, which lids almost never reach.
    side = np.r_[0:24, 104:152, 232:256]
    reference = unwrapped[: _UNWRAP_RADII // 2, side]
    median = float(np.median(reference))
    spread = max(1.4826 * float(np.median(np.abs(reference - median))), 6.0)
    reflection = cv2.dilate((unwrapped > 235).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    skin = (unwrapped > median + max(3.5 * spread, 40)) & ~reflection
    # Lashes: darker than the iris by 3 spreads (35 levels at least). MMU1's lashes over the
    # upper iris were let through at 3.5 / 45 and cost genuine agreement (ADR 0143).
    lash = unwrapped < median - max(3.0 * spread, 35)
    # A lid covers the ring from the outside in: once lid skin shows on the outer part of a
    # ray, the rest of the ray outwards is lid too. (Inner bright specks are not lids.)
    seeds = skin.copy()
    seeds[: int(_UNWRAP_RADII * 0.4)] = False
    skin |= np.logical_or.accumulate(seeds, axis=0)
    noise = (reflection | skin | lash).astype(np.uint8)
    noise = cv2.dilate(noise, np.ones((3, 5), np.uint8))
    return noise.astype(bool)
