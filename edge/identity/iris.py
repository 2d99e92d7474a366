"""Iris recognition, classical pipeline (ADR 0041): OpenCV + NumPy, no downloaded model.

frame -> pupil (darkest round blob) -> limbus (integro-differential search around the pupil)
-> quality gates -> rubber-sheet unwrap -> noise mask (lids, lashes, reflections)
-> 1D log-Gabor phase per radial band -> IrisCode (2 bits per sample) + validity mask.

Two codes compare by masked, normalised Hamming distance, minimised over angular shifts
(head tilt). Everything runs in memory: no eye image is written anywhere.

This module owns the templates, their distance and decision, the quality gates and the
`extract` entry point; where the eye is and how its ring is sampled lives in
edge/identity/iris_geometry.py, fusing several captures into one template in
edge/identity/iris_enrol.py.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from edge.identity.iris_geometry import (
    _UNWRAP_ANGLES,
    _UNWRAP_RADII,
    Circle,
    find_limbus,
    find_pupil,
    gray_frame,
    noise_mask,
    refine_pupil,
    unwrap,
)

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
# scores of real near-infrared eyes (bench/iris.py --dataset, MMU1: 98,350 impostor pairs,
# binomial tail fit, bootstrap over eyes). 0.275 lies under the bootstrap's 5th percentile
# (0.2924 since ADR 0143's segmentation, 0.2775 before; kept, see ADR 0141); strangers land
# in the near-miss band in under 1 in 1,000 searches below 0.315 (bootstrap p5 0.3275).
MATCH_THRESHOLD = 0.275
NEAR_MISS_THRESHOLD = 0.315
# Captures enrol together when every pair of the fused three is closer than this (ADR
# 0141): 2 of 98,350 unrelated real pairs came this close, and a mixed trio needs two such
# pairs; fusing masks every bit a majority of the three does not share, so a stranger's
# capture in the trio adds no bits of its own. Real captures of one eye agree less with
# each other than with a fused template (MMU1 pair genuine p95 0.366).
ENROL_AGREEMENT = 0.36

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

def extract(frame: np.ndarray, limits: QualityLimits = QualityLimits()) -> Extraction:
    """An iris template from one camera frame, or the quality gate that refused it. The
    metrics hold every figure measured before the refusal (for `edge diag iris` and the
    calibration bench)."""
    gray = gray_frame(frame)
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
    # Every other pixel each way: the same figures at a quarter of the work.
    ys, xs = np.ogrid[y0:y1:2, x0:x1:2]
    from_iris = (xs - iris.x) ** 2 + (ys - iris.y) ** 2
    from_pupil = (xs - pupil.x) ** 2 + (ys - pupil.y) ** 2
    ring = (from_iris < (iris.r * 0.9) ** 2) & (from_pupil > (pupil.r * 1.15) ** 2)
    values = gray[y0:y1:2, x0:x1:2][ring]
    if values.size == 0:
        return {"iris_brightness": 0.0, "reflection": 0.0}
    return {"iris_brightness": float(np.median(values)),
            "reflection": float((values >= 250).mean())}


def iris_quality_report(frame: np.ndarray) -> dict[str, object]:
    """What the gates saw in one frame, for `edge diag iris`: code, message, metrics."""
    quality = extract(frame).quality
    return {"ok": quality.ok, "code": quality.code, "message": quality.message,
            **{k: round(v, 3) for k, v in quality.metrics.items()}}


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
    seen = valid.sum(axis=1)
    fill = np.divide((mean_rows * valid).sum(axis=1), seen, out=np.zeros(BANDS, np.float32),
                     where=seen > 0)
    signal = np.where(valid, mean_rows, fill[:, None])
    signal = signal - signal.mean(axis=1, keepdims=True)
    response = np.fft.ifft(np.fft.fft(signal, axis=1) * _FILTER, axis=1)[:, ::2]
    code = np.stack([response.real > 0, response.imag > 0], axis=-1)

    covered = 1 - counts / rows_per_band
    half = int(_GABOR_WAVELENGTH) // 2
    wrapped = np.pad(covered.astype(np.float32), ((0, 0), (half, half)), mode="wrap")
    spread = cv2.blur(wrapped, (2 * half + 1, 1))[:, half:-half]
    magnitude = np.abs(response)
    cut = int(magnitude.size * _WEAK_BIT_FRACTION)
    weak = magnitude < np.partition(magnitude.ravel(), cut)[cut]
    usable = (spread[:, ::2] < 0.35) & ~weak
    mask = np.repeat(usable[..., None], 2, axis=-1)
    return IrisTemplate.from_bits(code, mask)
