"""Iris recognition, classical pipeline (ADR 0041): OpenCV + NumPy, no downloaded model.

frame -> pupil (darkest round blob) -> limbus (integro-differential search around the pupil)
-> quality gates -> rubber-sheet unwrap -> noise mask (lids, lashes, reflections)
-> 1D log-Gabor phase per radial band -> IrisCode (2 bits per sample) + validity mask.

Two codes compare by masked, normalised Hamming distance, minimised over angular shifts
(head tilt). Everything runs in memory: no eye image is written anywhere.
"""
from __future__ import annotations

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

# Decision thresholds on the normalised distance, chosen from bench/iris.py (ADR 0041):
# genuine comparisons p99 0.226 (max 0.253), the nearest of 68,854 impostors 0.341, and
# the impostor tail thins about tenfold per 0.02 towards zero.
MATCH_THRESHOLD = 0.26
NEAR_MISS_THRESHOLD = 0.32
# Two raw captures agree less than a capture and a fused template do (bench: up to ~0.30).
ENROL_AGREEMENT = NEAR_MISS_THRESHOLD

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
}


@dataclass(frozen=True)
class QualityLimits:
    """Where the gates close. Pixel figures are for a 640x480 iris camera."""

    min_iris_radius: float = 70.0
    max_iris_radius: float = 160.0
    max_centre_offset: float = 0.25  # of the frame's width/height
    edge_margin: float = 4.0  # pixels the iris must stay inside the frame
    min_sharpness: float = 0.14  # pupil-edge step over height; refuses blur sigma >~ 3 px
    min_usable: float = 0.5  # fraction of the iris ring not covered


@dataclass(frozen=True)
class Quality:
    code: str
    metrics: dict[str, float] = field(default_factory=dict)

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
    """An iris template from one camera frame, or the quality gate that refused it."""
    gray = _gray(frame)
    found = find_pupil(gray)
    if found is None:
        return Extraction(Quality("no_eye"))
    pupil, roundness = found
    if roundness < _MIN_ROUNDNESS:
        return Extraction(Quality("covered", {"pupil_roundness": roundness}))
    pupil, sharpness = refine_pupil(gray, pupil)
    iris = find_limbus(gray, pupil)
    if iris is None:  # a pupil but no iris beside it: lids or lashes hide it
        return Extraction(Quality("covered", {"pupil_r": pupil.r}))
    metrics = {"iris_x": iris.x, "iris_y": iris.y, "iris_r": iris.r, "pupil_r": pupil.r,
               "sharpness": sharpness}
    gate = _geometry_gate(gray.shape, iris, limits)
    if gate is not None:
        return Extraction(Quality(gate, metrics))
    if sharpness < limits.min_sharpness:
        return Extraction(Quality("blurred", metrics))
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


def iris_quality_report(frame: np.ndarray) -> dict[str, object]:
    """What the gates saw in one frame, for `edge diag iris`: code, message, metrics."""
    quality = extract(frame).quality
    return {"ok": quality.ok, "code": quality.code, "message": quality.message,
            **{k: round(v, 3) for k, v in quality.metrics.items()}}


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
        hull = cv2.convexHull(contour)  # reflections bite notches out of the edge
        area = cv2.contourArea(hull)
        if not 60 <= area <= largest:
            continue
        (x, y), enclosing = cv2.minEnclosingCircle(hull)
        roundness = area / (math.pi * enclosing**2)
        if roundness < _MIN_PARTIAL_ROUNDNESS:
            continue
        # A round blob beats a bigger ragged one (a lash line, a shadow).
        rank = area * (4.0 if roundness >= _MIN_ROUNDNESS else 1.0)
        if best is None or rank > best[0]:
            circle = Circle(2 * x + 0.5, 2 * y + 0.5, 2 * math.sqrt(area / math.pi))
            best = (rank, circle, roundness)
    return None if best is None else (best[1], best[2])


_MIN_SCLERA_CONTRAST = 30.0  # grey levels between the iris and the white beside it
_MIN_ROUNDNESS = 0.8  # below: a lid hides part of the pupil (open eyes measured >= 0.85)
_MIN_PARTIAL_ROUNDNESS = 0.3


def find_limbus(gray: np.ndarray, pupil: Circle) -> Circle | None:
    """Daugman's integro-differential operator on the side sectors (lids cover top and
    bottom): the circle where brightness jumps most, around centres near the pupil's."""
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
    if jump[ix, iy, ir] < 12:
        return None
    # Beside an open iris lies the white of the eye, far brighter than the iris. A nearly
    # closed eye shows lid skin there instead, about as bright as what lies inside.
    inside = float(np.median(profile[ix, iy, max(ir - 12, 0):ir + 1]))
    outside = float(np.median(profile[ix, iy, ir + 6:ir + 16]))
    if outside - inside < _MIN_SCLERA_CONTRAST:
        return None
    coarse = Circle(float(pupil.x + x_offsets[ix]), float(pupil.y + y_offsets[iy]),
                    float(radii[ir] + 2))
    return _refine_limbus(gray, coarse, angles)


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
    reach = min(24.0, pupil.r * 0.7)  # wide enough to see both plateaus of a soft edge
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
    sharpness = float(np.max(np.diff(profile)) / 0.5 / step)
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
    "inconsistent": "The pictures did not agree with each other. Please try again.",
}
MIN_ENROL_CAPTURES = 3


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
    message) and keeps the good ones. Every pair must agree; bits they do not agree on are
    masked (fragile bits), the rest fused by majority."""
    if len(templates) < MIN_ENROL_CAPTURES:
        return Enrolment("too_few_captures", None, qualities)
    count = len(templates)
    distance = np.zeros((count, count))
    shift = np.zeros((count, count), dtype=int)
    for i in range(count):
        for j in range(i + 1, count):
            distance[i, j], shift[i, j] = hamming_distance(templates[i], templates[j])
            distance[j, i], shift[j, i] = distance[i, j], -shift[i, j]
    if distance.max() >= ENROL_AGREEMENT:
        return Enrolment("inconsistent", None, qualities)
    centre = int(np.argmin(distance.sum(axis=1)))
    fused = _fuse(templates, [int(shift[i, centre]) for i in range(count)])
    if fused.valid_bits < MIN_COMPARED_BITS * 2:
        return Enrolment("too_few_captures", None, qualities)
    return Enrolment("ok", fused, qualities)


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
