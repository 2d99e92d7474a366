"""Iris recognition, classical pipeline (ADR 0041): OpenCV + NumPy, no downloaded model.

frame -> pupil (darkest round blob) -> limbus (integro-differential search around the pupil)
-> quality gates -> rubber-sheet unwrap -> noise mask (lids, lashes, reflections)
-> 1D log-Gabor phase per radial band -> IrisCode (2 bits per sample) + validity mask.

Two codes compare by masked, normalised Hamming distance, minimised over angular shifts
(head tilt). Everything runs in memory: no eye image is written anywhere.
"""
from __future__ import annotations

import itertools
import math
import struct
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

# Code geometry: BANDS radial bands x ANGLES angular samples x 2 phase bits = 2048 bits.
BANDS = 8
ANGLES = 128
CODE_BITS = BANDS * ANGLES * 2
CODE_BYTES = CODE_BITS // 8
MAX_SHIFT = 6  # angular samples each way: +-17 degrees of head tilt
MIN_COMPARED_BITS = 400  # fewer bits in common than this: the codes are not comparable
_REFERENCE_BITS = 1536  # Daugman's score normalisation: the typical count of bits compared

# Decision thresholds on the normalised distance, from an error budget (ADR 0141): a false
# match in under 1 in a million 1:N searches over 2,000 enrolled residents, from impostor
# scores of real near-infrared eyes (bench/iris.py --dataset, MMU1: 96,590 impostor pairs,
# binomial tail fit, bootstrap over eyes). 0.275 lies under the bootstrap's 5th percentile
# (0.2775; point estimate 0.2975); strangers land in the near-miss band in under 1 in
# 1,000 searches below 0.315 (bootstrap p5 0.320).
MATCH_THRESHOLD = 0.275
NEAR_MISS_THRESHOLD = 0.315
# Captures enrol together when every pair of the fused three is closer than this (ADR
# 0141): 4 of 96,590 unrelated real pairs came this close, and a mixed trio needs two such
# pairs; fusing masks every bit the three do not all share, so a stranger's capture in
# the trio adds no bits of its own. Real captures of one eye agree less with each other
# than with a fused template (MMU1 pair genuine p95 0.375).
ENROL_AGREEMENT = 0.36

_UNWRAP_RADII = 32
_UNWRAP_ANGLES = 256
_GABOR_WAVELENGTH = 16.0  # in unwrapped angular samples
_GABOR_BANDWIDTH = 0.55  # sigma / f0 of the log-Gabor, Masek's classic choice
_WEAK_BIT_FRACTION = 0.12  # weakest filter responses: their phase is noise, mask them

Decision = Literal["match", "near_miss", "no_match"]


# ----------------------------------------------------------------------------- templates

class IrisTemplate:
    """An IrisCode and its validity mask, bit-packed. Opaque to everyone else: store it
    encrypted (TemplateCipher) and never log it; repr() shows no bits on purpose."""

    VERSION = 1
    _HEADER = struct.Struct(">BHH")  # version, bands, angles

    __slots__ = ("code", "mask")

    def __init__(self, code: np.ndarray, mask: np.ndarray) -> None:
        if code.shape != (CODE_BYTES,) or mask.shape != (CODE_BYTES,):
            raise ValueError(f"an iris template holds {CODE_BYTES} code and mask bytes")
        self.code = np.ascontiguousarray(code, dtype=np.uint8)
        self.mask = np.ascontiguousarray(mask, dtype=np.uint8)

    @classmethod
    def from_bits(cls, code: np.ndarray, mask: np.ndarray) -> "IrisTemplate":
        """From boolean arrays of shape (BANDS, ANGLES, 2)."""
        return cls(np.packbits(code.reshape(-1)), np.packbits(mask.reshape(-1)))

    def bits(self) -> tuple[np.ndarray, np.ndarray]:
        """(code, mask) as boolean arrays of shape (BANDS, ANGLES, 2)."""
        shape = (BANDS, ANGLES, 2)
        return (np.unpackbits(self.code).astype(bool).reshape(shape),
                np.unpackbits(self.mask).astype(bool).reshape(shape))

    @property
    def valid_bits(self) -> int:
        return int(np.unpackbits(self.mask).sum())

    def to_bytes(self) -> bytes:
        header = self._HEADER.pack(self.VERSION, BANDS, ANGLES)
        return header + self.code.tobytes() + self.mask.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> "IrisTemplate":
        size = cls._HEADER.size
        if len(data) != size + 2 * CODE_BYTES:
            raise ValueError("not an iris template of this version")
        if cls._HEADER.unpack_from(data) != (cls.VERSION, BANDS, ANGLES):
            raise ValueError("not an iris template of this version")
        raw = np.frombuffer(data, np.uint8, offset=size)
        return cls(raw[:CODE_BYTES].copy(), raw[CODE_BYTES:].copy())

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, IrisTemplate) and np.array_equal(self.code, other.code)
                and np.array_equal(self.mask, other.mask))

    def __repr__(self) -> str:
        return f"<IrisTemplate v{self.VERSION} {CODE_BITS} bits, {self.valid_bits} valid>"


def shifted_bits(template: IrisTemplate, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """Packed (code, mask) of the template turned by `shift` angular samples."""
    code, mask = template.bits()
    return (np.packbits(np.roll(code, shift, axis=1).reshape(-1)),
            np.packbits(np.roll(mask, shift, axis=1).reshape(-1)))


_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def popcount_rows(words: np.ndarray) -> np.ndarray:
    """Set bits summed over the last axis of an unsigned integer array."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2: one instruction per word
        return np.bitwise_count(words).sum(axis=-1, dtype=np.uint16)
    return _BYTE_POPCOUNT[words.view(np.uint8)].sum(axis=-1, dtype=np.uint16)


def normalise_distance(disagreeing: np.ndarray, compared: np.ndarray) -> np.ndarray:
    """Daugman's normalisation, 0.5 - (0.5 - HD) * sqrt(n / n_ref): a score from few bits
    is pulled towards 0.5 (chance), so a mostly covered eye cannot match by luck. Codes with
    too few bits in common are not comparable: 1.0."""
    n = np.asarray(compared, dtype=np.float32)
    d = np.asarray(disagreeing, dtype=np.float32)
    score = 0.5 - (0.5 * n - d) / np.sqrt(np.maximum(n, 1.0) * _REFERENCE_BITS)
    return np.where(n >= MIN_COMPARED_BITS, np.clip(score, 0.0, 1.0), 1.0)


def hamming_distance(a: IrisTemplate, b: IrisTemplate, max_shift: int = MAX_SHIFT
                     ) -> tuple[float, int]:
    """(smallest normalised distance over angular shifts, the shift that gave it)."""
    shifts = range(-max_shift, max_shift + 1)
    disagreeing, compared = [], []
    for shift in shifts:
        code, mask = shifted_bits(a, shift)
        both = mask & b.mask
        disagreeing.append(int(popcount_rows((code ^ b.code) & both)))
        compared.append(int(popcount_rows(both)))
    scores = normalise_distance(np.array(disagreeing), np.array(compared))
    best = int(np.argmin(scores))
    return float(scores[best]), shifts[best]


def decide(distance: float) -> Decision:
    """match: open. near_miss: plausibly this person but not sure enough, ask for the code.
    no_match: someone else, or no usable eye."""
    if distance < MATCH_THRESHOLD:
        return "match"
    if distance < NEAR_MISS_THRESHOLD:
        return "near_miss"
    return "no_match"


# ----------------------------------------------------------------------------- quality

QUALITY_MESSAGES: dict[str, str] = {
    "ok": "Eye captured.",
    "no_eye": "We cannot see an eye. Look straight into the camera.",
    "off_centre": "Move so that your eye is in the middle of the camera picture.",
    "too_far": "Come a little closer to the camera.",
    "too_close": "Move back a little from the camera.",
    "blurred": "The picture is blurred. Hold still for a moment.",
    "covered": "Your eye is too covered. Open your eyes wide and look at the camera.",
    "too_bright": "Too much light on your eye. Step out of direct sunlight or shade the camera.",
    "glasses": "Reflections hide your eye. Please take off your glasses.",
    "not_live": "We could not confirm a live eye. Look into the camera yourself, without "
                "a photo or a screen.",
}


@dataclass(frozen=True)
class QualityLimits:
    """Where the gates close. Pixel figures are for a 640x480 iris camera; every other
    figure is set from its measured distribution on real near-infrared eyes (ADR 0140)."""

    min_iris_radius: float = 70.0
    max_iris_radius: float = 160.0
    max_centre_offset: float = 0.25  # of the frame's width/height
    edge_margin: float = 4.0  # pixels the iris must stay inside the frame
    # Pupil-edge steepness x iris radius / 100: the same figure for the same blur relative
    # to the eye, whatever the camera's resolution.
    min_sharpness: float = 0.07
    min_usable: float = 0.5  # fraction of the iris ring not covered
    min_pupil_roundness: float = 0.7  # below: a lid cuts across the pupil
    min_limbus_jump: float = 6.0  # grey levels gained across the limbus
    min_sclera_contrast: float = 10.0  # grey levels from the iris to the white beside it
    max_iris_brightness: float = 200.0  # median grey of the iris ring: washed out above
    max_reflection: float = 0.06  # fraction of the iris ring saturated by reflections


@dataclass(frozen=True)
class Quality:
    code: str
    metrics: dict[str, float] = field(default_factory=dict)
    detail: str | None = None  # which check refused, where a code has several (not_live)

    @property
    def ok(self) -> bool:
        return self.code == "ok"

    @property
    def message(self) -> str:
        return QUALITY_MESSAGES[self.code]


@dataclass(frozen=True)
class Extraction:
    quality: Quality
    template: IrisTemplate | None = None


# ----------------------------------------------------------------------------- pipeline

@dataclass(frozen=True)
class Circle:
    x: float
    y: float
    r: float


def extract(frame: np.ndarray, limits: QualityLimits = QualityLimits()) -> Extraction:
    """An iris template from one camera frame, or the quality gate that refused it. The
    metrics hold every figure measured before the refusal (for `edge diag iris` and the
    calibration bench)."""
    gray = _gray(frame)
    found = find_pupil(gray)
    if found is None:
        return Extraction(Quality("no_eye"))
    pupil, roundness = found
    metrics = {"pupil_roundness": roundness}
    if roundness < limits.min_pupil_roundness:
        return Extraction(Quality("covered", metrics))
    pupil, sharpness = refine_pupil(gray, pupil)
    limbus = find_limbus(gray, pupil)
    if limbus is None:  # no room for an iris around the pupil
        return Extraction(Quality("covered", metrics))
    iris = limbus.circle
    metrics.update({"iris_x": iris.x, "iris_y": iris.y, "iris_r": iris.r, "pupil_r": pupil.r,
                    "sharpness": sharpness * _plausible_iris_r(pupil, iris) / 100,
                    "limbus_jump": limbus.jump,
                    "sclera_contrast": limbus.sclera_contrast})
    metrics.update(_light_figures(gray, pupil, iris))
    gate = _first_refusal(gray.shape, iris, metrics, limits)
    if gate is not None:
        return Extraction(Quality(gate, metrics))
    unwrapped = unwrap(gray, pupil, iris)
    noise = noise_mask(unwrapped)
    metrics["usable"] = float(1 - noise.mean())
    if metrics["usable"] < limits.min_usable:
        return Extraction(Quality("covered", metrics))
    template = encode(unwrapped, noise)
    metrics["valid_bits"] = float(template.valid_bits)
    if template.valid_bits < MIN_COMPARED_BITS * 2:
        return Extraction(Quality("covered", metrics))
    return Extraction(Quality("ok", metrics), template)


def _plausible_iris_r(pupil: Circle, iris: Circle) -> float:
    """The iris radius to scale sharpness by: the limbus found, unless blur or a squint
    put it where no iris ends (real irises are 1.4 to 5 pupil radii)."""
    return float(np.clip(iris.r, 1.4 * pupil.r, 5.0 * pupil.r)) if iris.r > 2 * pupil.r \
        else 2.5 * pupil.r


def _first_refusal(shape: tuple[int, ...], iris: Circle, metrics: dict[str, float],
                   limits: QualityLimits) -> str | None:
    """The gates in the order a resident can fix them: light first (nothing else can be
    judged in a washed-out picture), then blur, where the eye is, glasses, lids."""
    if metrics["iris_brightness"] > limits.max_iris_brightness:
        return "too_bright"
    # Blur before distance: in a badly blurred frame the limbus search finds a wrong,
    # small circle, and "come closer" would be advice that cannot help.
    if metrics["sharpness"] < limits.min_sharpness:
        return "blurred"
    geometry = _geometry_gate(shape, iris, limits)
    if geometry is not None:
        return geometry
    if metrics["reflection"] > limits.max_reflection:
        return "glasses"
    # A limbus this faint, or no white beside it, is lid skin at the sides: a squint.
    if (metrics["limbus_jump"] < limits.min_limbus_jump
            or metrics["sclera_contrast"] < limits.min_sclera_contrast):
        return "covered"
    return None


def _light_figures(gray: np.ndarray, pupil: Circle, iris: Circle) -> dict[str, float]:
    """The iris ring's median grey (washed out by sunlight or a too-strong illuminator) and
    the fraction of it saturated (spectacle reflections; the cornea's own glints are a few
    small dots, mostly on the pupil)."""
    height, width = gray.shape
    x0, x1 = max(int(iris.x - iris.r), 0), min(int(iris.x + iris.r) + 1, width)
    y0, y1 = max(int(iris.y - iris.r), 0), min(int(iris.y + iris.r) + 1, height)
    ys, xs = np.ogrid[y0:y1, x0:x1]
    from_iris = (xs - iris.x) ** 2 + (ys - iris.y) ** 2
    from_pupil = (xs - pupil.x) ** 2 + (ys - pupil.y) ** 2
    ring = (from_iris < (iris.r * 0.9) ** 2) & (from_pupil > (pupil.r * 1.15) ** 2)
    values = gray[y0:y1, x0:x1][ring]
    if values.size == 0:
        return {"iris_brightness": 0.0, "reflection": 0.0}
    return {"iris_brightness": float(np.median(values)),
            "reflection": float((values >= 250).mean())}


def iris_quality_report(frame: np.ndarray) -> dict[str, object]:
    """What the gates saw in one frame, for `edge diag iris`: code, message, metrics."""
    quality = extract(frame).quality
    return {"ok": quality.ok, "code": quality.code, "message": quality.message,
            **{k: round(v, 3) for k, v in quality.metrics.items()}}


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
    darkest = float(np.percentile(small, 0.5))
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
    inscribed = float(cv2.distanceTransform(blob, cv2.DIST_L2, 5).max())
    if inscribed < 3:
        return None
    size = 2 * max(int(inscribed * 0.6), 1) + 1
    core = cv2.morphologyEx(blob, cv2.MORPH_OPEN, cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (size, size)))
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


def find_limbus(gray: np.ndarray, pupil: Circle) -> Limbus | None:
    """Daugman's integro-differential operator on the side sectors (lids cover top and
    bottom): the circle where brightness jumps most, around centres near the pupil's.
    Returns what it found and how clearly; the gates judge the figures."""
    radii = np.arange(pupil.r * 1.35, pupil.r * 4.5, 1.0, dtype=np.float32)
    if radii.size < 8:
        return None
    # Image y grows downwards: the sectors lean below the horizon, away from the upper lid.
    angles = np.deg2rad(np.r_[np.arange(-30, 46, 5), np.arange(135, 211, 5)]).astype(np.float32)
    x_offsets = np.arange(-6, 7, 2, dtype=np.float32)
    y_offsets = np.arange(-6, 7, 2, dtype=np.float32)
    cx = pupil.x + x_offsets[:, None, None, None]
    cy = pupil.y + y_offsets[None, :, None, None]
    map_x = cx + radii[None, None, None, :] * np.cos(angles)[None, None, :, None] + 0 * cy
    map_y = cy + radii[None, None, None, :] * np.sin(angles)[None, None, :, None] + 0 * cx
    shape = map_x.shape
    samples = cv2.remap(gray, map_x.reshape(-1, radii.size), map_y.reshape(-1, radii.size),
                        cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    # Median over angles: a lash or a reflection on one ray does not move the profile.
    profile = np.median(samples.reshape(shape), axis=2)
    profile = cv2.GaussianBlur(profile.reshape(-1, radii.size), (0, 0), 2.0).reshape(
        shape[0], shape[1], radii.size)
    jump = profile[..., 4:] - profile[..., :-4]
    ix, iy, ir = np.unravel_index(int(np.argmax(jump)), jump.shape)
    # Beside an open iris lies the white of the eye, brighter than the iris. A nearly
    # closed eye shows lid skin there instead, about as bright as what lies inside.
    inside = float(np.median(profile[ix, iy, max(ir - 12, 0):ir + 1]))
    outside = float(np.median(profile[ix, iy, ir + 6:ir + 16])) if ir + 6 < radii.size - 4 \
        else inside
    coarse = Circle(float(pupil.x + x_offsets[ix]), float(pupil.y + y_offsets[iy]),
                    float(radii[ir] + 2))
    return Limbus(_refine_limbus(gray, coarse, angles), float(jump[ix, iy, ir]),
                  outside - inside)


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


def _geometry_gate(shape: tuple[int, ...], iris: Circle, limits: QualityLimits) -> str | None:
    height, width = shape
    margin = limits.edge_margin
    if (iris.x - iris.r < margin or iris.y - iris.r < -iris.r * 0.3  # lids hide the top anyway
            or iris.x + iris.r > width - margin or iris.y + iris.r > height + iris.r * 0.3
            or abs(iris.x - width / 2) > width * limits.max_centre_offset
            or abs(iris.y - height / 2) > height * limits.max_centre_offset):
        return "off_centre"
    if iris.r < limits.min_iris_radius:
        return "too_far"
    if iris.r > limits.max_iris_radius:
        return "too_close"
    return None


def refine_pupil(gray: np.ndarray, pupil: Circle) -> tuple[Circle, float]:
    """The pupil circle fitted to the steepest point of each ray across its edge, and the
    edge's sharpness: steepest step over step height, about 1/(2.5 sigma) for an edge
    blurred by sigma pixels, whatever the lighting or the iris texture."""
    reach = min(48.0, pupil.r * 0.85)  # wide enough to see both plateaus of a soft edge
    radii = np.arange(pupil.r - reach, pupil.r + reach, 0.5, dtype=np.float32)
    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False, dtype=np.float32)
    map_x = pupil.x + np.cos(angles)[:, None] * radii[None, :]
    map_y = pupil.y + np.sin(angles)[:, None] * radii[None, :]
    rays = cv2.remap(gray, map_x, map_y, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    profile = np.median(rays, axis=0)
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
    fitted = _fit_circle(pupil.x + np.cos(angles[clean]) * (edge + 0.25),
                         pupil.y + np.sin(angles[clean]) * (edge + 0.25))
    if abs(fitted.r - pupil.r) > 6 or math.hypot(fitted.x - pupil.x, fitted.y - pupil.y) > 6:
        return pupil, sharpness
    return fitted, sharpness


def _fit_circle(xs: np.ndarray, ys: np.ndarray) -> Circle:
    """Least-squares circle through points (Kasa's algebraic fit)."""
    design = np.column_stack([xs, ys, np.ones_like(xs)])
    (a, b, c), *_ = np.linalg.lstsq(design, xs**2 + ys**2, rcond=None)
    x, y = a / 2, b / 2
    return Circle(float(x), float(y), float(math.sqrt(max(c + x * x + y * y, 0.0))))


def unwrap(gray: np.ndarray, pupil: Circle, iris: Circle) -> np.ndarray:
    """Daugman's rubber sheet: rows from the pupil edge to the limbus, columns around."""
    rho = np.linspace(0.06, 0.94, _UNWRAP_RADII, dtype=np.float32)[:, None]
    theta = np.linspace(0, 2 * np.pi, _UNWRAP_ANGLES, endpoint=False, dtype=np.float32)[None, :]
    cos, sin = np.cos(theta), np.sin(theta)
    map_x = (1 - rho) * (pupil.x + pupil.r * cos) + rho * (iris.x + iris.r * cos)
    map_y = (1 - rho) * (pupil.y + pupil.r * sin) + rho * (iris.y + iris.r * sin)
    smooth = cv2.GaussianBlur(gray, (0, 0), 1.0)
    return cv2.remap(smooth, map_x, map_y, cv2.INTER_LINEAR,
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
    lash = unwrapped < median - max(3.5 * spread, 45)
    # A lid covers the ring from the outside in: once lid skin shows on the outer part of a
    # ray, the rest of the ray outwards is lid too. (Inner bright specks are not lids.)
    seeds = skin.copy()
    seeds[: int(_UNWRAP_RADII * 0.4)] = False
    skin |= np.logical_or.accumulate(seeds, axis=0)
    noise = (reflection | skin | lash).astype(np.uint8)
    noise = cv2.dilate(noise, np.ones((3, 5), np.uint8))
    return noise.astype(bool)


def _log_gabor(length: int) -> np.ndarray:
    freq = np.fft.fftfreq(length)
    f0 = 1.0 / _GABOR_WAVELENGTH
    response = np.zeros(length)
    positive = freq > 0
    response[positive] = np.exp(-(np.log(freq[positive] / f0) ** 2)
                                / (2 * np.log(_GABOR_BANDWIDTH) ** 2))
    return response * 2  # one-sided spectrum: the inverse FFT is the analytic signal


_FILTER = _log_gabor(_UNWRAP_ANGLES)


def encode(unwrapped: np.ndarray, noise: np.ndarray) -> IrisTemplate:
    """Phase of a 1D log-Gabor filter along each radial band: 2 bits per sample."""
    rows_per_band = _UNWRAP_RADII // BANDS
    weights = (~noise).astype(np.float32)
    bands = unwrapped.reshape(BANDS, rows_per_band, _UNWRAP_ANGLES)
    band_weights = weights.reshape(BANDS, rows_per_band, _UNWRAP_ANGLES)
    counts = band_weights.sum(axis=1)
    mean_rows = np.divide((bands * band_weights).sum(axis=1), counts,
                          out=np.zeros_like(counts), where=counts > 0)
    # Fill covered samples with the band's mean so they add no edges of their own.
    valid = counts > 0
    fill = np.array([row[ok].mean() if ok.any() else 0.0 for row, ok in zip(mean_rows, valid)])
    signal = np.where(valid, mean_rows, fill[:, None])
    signal = signal - signal.mean(axis=1, keepdims=True)
    response = np.fft.ifft(np.fft.fft(signal, axis=1) * _FILTER, axis=1)[:, ::2]
    code = np.stack([response.real > 0, response.imag > 0], axis=-1)

    covered = 1 - counts / rows_per_band
    half = int(_GABOR_WAVELENGTH) // 2
    wrapped = np.pad(covered.astype(np.float32), ((0, 0), (half, half)), mode="wrap")
    spread = cv2.blur(wrapped, (2 * half + 1, 1))[:, half:-half]
    magnitude = np.abs(response)
    weak = magnitude < np.quantile(magnitude, _WEAK_BIT_FRACTION)
    usable = (spread[:, ::2] < 0.35) & ~weak
    mask = np.repeat(usable[..., None], 2, axis=-1)
    return IrisTemplate.from_bits(code, mask)


# ----------------------------------------------------------------------------- enrolment

ENROL_MESSAGES: dict[str, str] = {
    "ok": "Your eye is enrolled.",
    "too_few_captures": "We need a few more clear pictures of your eye. Please try again.",
    "inconsistent": "The pictures did not agree with each other yet. Please look into the "
                    "camera again for a few more pictures.",
}
MIN_ENROL_CAPTURES = 3
MAX_ENROL_CAPTURES = 6  # then start over: more of the same eye rarely helps


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
    return IrisTemplate.from_bits(ones > 0.5, enough & (agreement >= 0.75))
