"""A camera that shows what tests and `edge run --simulate` put in front of it.

Synthetic eyes: each person (an integer id, used as seed) has a stable iris texture -- radial
furrows, crypts, a collarette and fine fibres. Each capture varies what a real camera varies:
pupil size, eye position, head tilt, eyelids, lashes, specular reflections, blur and noise.

QR scenes: a segno QR shown on a phone screen held up to a kiosk camera, with perspective
tilt, blur, glare and low contrast.

Frames are made in memory; nothing here writes an image to disk.
"""
from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np
import segno

EYE_FRAME_SIZE = (640, 480)
_TEXTURE_SHAPE = (64, 720)  # (radial, angular) samples of an iris texture


# ----------------------------------------------------------------------------- eyes

class SyntheticIris:
    """The iris texture of one synthetic person, in normalised polar coordinates:
    rows run from the pupil edge (0) to the limbus (1), columns around the eye."""

    def __init__(self, person_id: int) -> None:
        self.person_id = person_id
        rng = np.random.default_rng([0x1415, person_id])
        self.texture = _iris_texture(rng)
        # Per-person anatomy that stays the same from capture to capture.
        self.iris_radius = float(rng.uniform(98, 118))
        self.pupil_offset = rng.uniform(-0.04, 0.04, size=2)  # pupil centre vs iris centre, in R
        self.base_pupil_ratio = float(rng.uniform(0.3, 0.45))


def _iris_texture(rng: np.random.Generator) -> np.ndarray:
    rows, cols = _TEXTURE_SHAPE
    rho = np.linspace(0.0, 1.0, rows)[:, None]
    theta = np.linspace(0.0, 2 * np.pi, cols, endpoint=False)[None, :]
    base = rng.uniform(75, 115)
    tex = np.full((rows, cols), base, dtype=np.float64)
    tex += 18 * (rho - 0.5)  # lighter towards the limbus
    # Radial furrows: thin angular ridges or valleys along part of the radius, slightly curved.
    for _ in range(int(rng.integers(70, 110))):
        centre = rng.uniform(0, 2 * np.pi)
        width = rng.uniform(0.012, 0.04)
        curl = rng.uniform(-0.25, 0.25)
        lo, hi = sorted(rng.uniform(0, 1, size=2))
        span = np.exp(-(((rho - (lo + hi) / 2) / max(hi - lo, 0.15)) ** 2) * 2)
        angle = np.angle(np.exp(1j * (theta - centre - curl * rho)))
        tex += rng.normal(0, 14) * np.exp(-((angle / width) ** 2)) * span
    # Crypts: dark lacunae.
    for _ in range(int(rng.integers(10, 22))):
        r0, t0 = rng.uniform(0.15, 0.9), rng.uniform(0, 2 * np.pi)
        sr, st = rng.uniform(0.04, 0.1), rng.uniform(0.03, 0.09)
        angle = np.angle(np.exp(1j * (theta - t0)))
        tex -= rng.uniform(15, 35) * np.exp(-(((rho - r0) / sr) ** 2 + (angle / st) ** 2))
    # Collarette: a wavy ring about a third of the way out.
    wave = 0.33 + 0.04 * np.sin(theta * rng.integers(5, 11) + rng.uniform(0, 6.3))
    tex += rng.uniform(8, 16) * np.exp(-(((rho - wave) / 0.035) ** 2))
    # Fine fibres: smoothed noise, stretched radially.
    fibres = cv2.GaussianBlur(rng.normal(0, 1, (rows, cols)), (0, 0), sigmaX=1.2, sigmaY=4)
    tex += 30 * fibres
    return np.clip(tex, 10, 200).astype(np.float32)


@dataclass(frozen=True)
class EyeCapture:
    """How one capture of an eye differs from the next."""

    pupil_ratio: float = 0.38  # pupil radius / iris radius
    offset: tuple[float, float] = (0.0, 0.0)  # iris centre from frame centre, pixels
    rotation_deg: float = 0.0  # head tilt
    scale: float = 1.0  # distance to the camera
    upper_lid: float = 0.8  # where the upper lid crosses the iris axis, in iris radii above
    lower_lid: float = 0.95  # and the lower lid, below
    lashes: int = 30
    reflections: int = 2
    # The kiosk LED's corneal glint, from the pupil centre in iris radii (None: no LED).
    led_glint: tuple[float, float] | None = None
    # Real near-infrared eyes (MMU1): the white of the eye only ~20-60 grey levels above
    # the iris, and a limbus that fades over several percent of the iris radius.
    sclera_contrast: float = 45.0
    limbus_width: float = 0.05  # in iris radii
    blur_sigma: float = 0.8
    noise_sigma: float = 3.0
    # Sunlight on the face: grey levels scaled by this before the camera clips them.
    exposure: float = 1.0
    # Spectacle lenses: each mirrors a lamp or window as a large bright patch, much bigger
    # than a cornea's glint, somewhere over the iris.
    lens_glare: int = 0
    seed: int = 0


def random_capture(rng: np.random.Generator, **overrides: object) -> EyeCapture:
    """A typical capture at a kiosk: the person looks in, roughly centred, eyes open."""
    capture = EyeCapture(
        pupil_ratio=float(rng.uniform(0.28, 0.5)),
        offset=(float(rng.normal(0, 15)), float(rng.normal(0, 10))),
        rotation_deg=float(rng.uniform(-8, 8)),
        scale=float(rng.uniform(0.92, 1.08)),
        upper_lid=float(rng.uniform(0.55, 1.0)),
        lower_lid=float(rng.uniform(0.8, 1.1)),
        lashes=int(rng.integers(20, 60)),
        reflections=int(rng.integers(1, 3)),
        sclera_contrast=float(rng.uniform(25, 65)),
        limbus_width=float(rng.uniform(0.03, 0.06)),
        blur_sigma=float(rng.uniform(0.6, 1.5)),
        noise_sigma=float(rng.uniform(2, 5)),
        seed=int(rng.integers(0, 2**31)),
    )
    return replace(capture, **overrides)  # type: ignore[arg-type]


def render_eye(
    iris: SyntheticIris,
    capture: EyeCapture,
    size: tuple[int, int] = EYE_FRAME_SIZE,
) -> np.ndarray:
    """A grayscale (near-infrared look) eye frame, uint8 of shape (height, width)."""
    rng = np.random.default_rng(capture.seed)
    width, height = size
    radius = iris.iris_radius * capture.scale
    cx = width / 2 + capture.offset[0]
    cy = height / 2 + capture.offset[1]
    tilt = math.radians(capture.rotation_deg)

    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    dx, dy = xs - cx, ys - cy
    # Eye-aligned coordinates: the head tilt turns lids and iris together.
    u = dx * math.cos(tilt) + dy * math.sin(tilt)
    v = -dx * math.sin(tilt) + dy * math.cos(tilt)

    # Skin a little brighter than the white of the eye, as near-infrared shows it.
    sclera = float(np.median(iris.texture)) + capture.sclera_contrast
    image = _skin(rng, height, width) - 165 + sclera + 15
    lid_top = -radius * capture.upper_lid + (u / (2.6 * radius)) ** 2 * radius * 2.2
    lid_bottom = radius * capture.lower_lid - (u / (2.6 * radius)) ** 2 * radius * 1.6
    opening = (v > lid_top) & (v < lid_bottom)

    pupil_r = radius * capture.pupil_ratio
    px, py = iris.pupil_offset * radius
    iris_layer, inside_iris, inside_pupil = _iris_layer(iris, capture, u, v, radius, pupil_r,
                                                        px, py)
    # The white of the eye, a little shaded towards the corners, and a soft limbus.
    sclera_layer = sclera - 12 * np.clip(np.abs(u) / (2.4 * radius), 0, 1)
    fade = np.clip((np.hypot(u, v) - radius) / max(capture.limbus_width * radius, 1.0) + 0.5,
                   0, 1)
    eye = iris_layer * (1 - fade) + sclera_layer * fade
    image = np.where(opening, eye, image)
    pupil_fade = np.clip(-_pupil_depth(u, v, px, py, pupil_r) / 1.5 + 0.5, 0, 1)
    image = np.where(opening, image * (1 - pupil_fade) + rng.uniform(18, 32) * pupil_fade, image)

    image = _lid_edges_and_lashes(image, rng, capture, cx, cy, tilt, radius)
    image = _reflections(image, rng, capture, cx + px, cy + py, pupil_r)
    if capture.led_glint is not None:
        gx, gy = capture.led_glint
        cv2.circle(image, (int(round(cx + px + gx * radius)), int(round(cy + py + gy * radius))),
                   max(int(radius * 0.04), 3), 252.0, -1, cv2.LINE_AA)
    image = _lens_glare(image, rng, capture.lens_glare, cx, cy, radius)
    if capture.blur_sigma > 0:
        image = cv2.GaussianBlur(image, (0, 0), capture.blur_sigma)
    image = image * capture.exposure + rng.normal(0, capture.noise_sigma, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def _pupil_depth(u: np.ndarray, v: np.ndarray, px: float, py: float, pupil_r: float
                 ) -> np.ndarray:
    """Signed distance outside the pupil's edge (negative inside), in pixels."""
    return np.hypot(u - px, v - py) - pupil_r


def _skin(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    shade = cv2.resize(rng.uniform(145, 185, (4, 5)).astype(np.float32), (width, height),
                       interpolation=cv2.INTER_CUBIC)
    return shade + cv2.GaussianBlur(rng.normal(0, 6, (height, width)).astype(np.float32),
                                    (0, 0), 2)


def _iris_layer(
    iris: SyntheticIris, capture: EyeCapture, u: np.ndarray, v: np.ndarray,
    radius: float, pupil_r: float, px: float, py: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = np.hypot(u, v)
    theta = np.arctan2(v, u)
    # Distance from the iris centre to the (off-centre) pupil edge along each ray.
    phi = math.atan2(py, px)
    d = math.hypot(px, py)
    along = d * np.cos(theta - phi)
    across = d * np.sin(theta - phi)
    pupil_edge = along + np.sqrt(np.maximum(pupil_r**2 - across**2, 0))
    rho = (r - pupil_edge) / np.maximum(radius - pupil_edge, 1e-3)
    # Real irises do not stretch linearly when the pupil dilates; nor does this one.
    gamma = 1.0 + 0.5 * (capture.pupil_ratio - iris.base_pupil_ratio)
    rho_tex = np.clip(rho, 0, 1) ** gamma
    rows, cols = iris.texture.shape
    map_x = ((theta % (2 * np.pi)) / (2 * np.pi) * cols).astype(np.float32)
    map_y = (rho_tex * (rows - 1)).astype(np.float32)
    layer = cv2.remap(iris.texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    # A darker limbal ring, as wide as the fade to the sclera.
    ring = max(2 * capture.limbus_width * radius, 2.0)
    limbus = np.clip((r - radius + ring) / ring, 0, 1)
    layer = layer * (1 - 0.2 * limbus)
    inside_pupil = (r - pupil_edge) < 0
    return layer.astype(np.float32), (rho <= 1.0) & ~inside_pupil, inside_pupil


def _lid_edges_and_lashes(
    image: np.ndarray, rng: np.random.Generator, capture: EyeCapture,
    cx: float, cy: float, tilt: float, radius: float,
) -> np.ndarray:
    cos_t, sin_t = math.cos(tilt), math.sin(tilt)

    def to_xy(u: float, v: float) -> tuple[int, int]:
        return (int(round(cx + u * cos_t - v * sin_t)), int(round(cy + u * sin_t + v * cos_t)))

    us = np.linspace(-2.4 * radius, 2.4 * radius, 60)
    top = [to_xy(u, -radius * capture.upper_lid + (u / (2.6 * radius)) ** 2 * radius * 2.2)
           for u in us]
    cv2.polylines(image, [np.array(top, np.int32)], False, 60.0, 3, cv2.LINE_AA)
    for _ in range(capture.lashes):
        u0 = rng.uniform(-1.3, 1.3) * radius
        v0 = -radius * capture.upper_lid + (u0 / (2.6 * radius)) ** 2 * radius * 2.2
        length = rng.uniform(0.12, 0.4) * radius
        bend = rng.uniform(-0.3, 0.3)
        points = [to_xy(u0 + bend * length * t * t, v0 + length * t) for t in np.linspace(0, 1, 6)]
        cv2.polylines(image, [np.array(points, np.int32)], False, float(rng.uniform(25, 55)),
                      int(rng.integers(1, 3)), cv2.LINE_AA)
    return image


def _reflections(
    image: np.ndarray, rng: np.random.Generator, capture: EyeCapture,
    pupil_x: float, pupil_y: float, pupil_r: float,
) -> np.ndarray:
    for _ in range(capture.reflections):
        angle = rng.uniform(0, 2 * np.pi)
        dist = rng.uniform(0.2, 1.3) * pupil_r
        centre = (int(pupil_x + dist * math.cos(angle)), int(pupil_y + dist * math.sin(angle)))
        cv2.circle(image, centre, int(rng.integers(4, 9)), 252.0, -1, cv2.LINE_AA)
    return image


def _lens_glare(image: np.ndarray, rng: np.random.Generator, patches: int,
                cx: float, cy: float, radius: float) -> np.ndarray:
    for _ in range(patches):
        angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 0.7) * radius
        centre = (int(cx + dist * math.cos(angle)), int(cy + dist * math.sin(angle)))
        axes = (int(radius * rng.uniform(0.2, 0.3)), int(radius * rng.uniform(0.12, 0.2)))
        cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255.0, -1,
                    cv2.LINE_AA)
    return image


# ----------------------------------------------------------------------------- light

# Where each illuminator LED's glint sits on a live cornea, from the pupil centre, in iris
# radii: LEDs either side of the lens, a little above it.
LED_GLINTS: dict[str, tuple[float, float]] = {"left": (-0.15, -0.22), "right": (0.15, -0.22)}


def pupil_light_response(pattern: str, since_s: float) -> float:
    """Pupil radius factor after the switch to the bright pattern: a latency of a quarter
    second, then narrowing towards 80% with a 0.3 s time constant (the light reflex)."""
    if pattern != "right" or since_s <= 0.25:
        return 1.0
    return 1.0 - 0.2 * (1.0 - math.exp(-(since_s - 0.25) / 0.3))


def present_on_medium(photo: np.ndarray, medium: str, pattern: str,
                      rng: np.random.Generator) -> np.ndarray:
    """What the kiosk camera sees of an eye photo held up on paper or a screen."""
    height, width = photo.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    if medium == "paper":  # ink on paper: flatter, with a 45-degree halftone screen
        diagonal = (xs + ys) / math.sqrt(2)
        anti = (xs - ys) / math.sqrt(2)
        dots = 0.5 + 0.5 * np.cos(2 * np.pi * diagonal / 3.4) * np.cos(2 * np.pi * anti / 3.4)
        photo = (40 + 0.75 * photo) * (0.8 + 0.2 * dots)
    elif medium == "photo":  # a good photo print: flatter, no dots
        photo = 30 + 0.8 * photo
    else:  # a screen: subpixel columns, and the glass mirrors the lit LED as a big patch
        photo = photo * (0.88 + 0.12 * np.cos(2 * np.pi * xs / 3.0))
        if pattern in LED_GLINTS:
            side = LED_GLINTS[pattern][0]
            centre = (int(width / 2 + side * 6 * 100), int(height / 2 - 60))
            patch = np.zeros_like(photo)
            cv2.circle(patch, centre, 40, 1.0, -1)
            photo = photo + 120 * cv2.GaussianBlur(patch, (0, 0), 8)
    photo = cv2.GaussianBlur(photo, (0, 0), 0.6)
    return np.clip(photo + rng.normal(0, 2.0, photo.shape), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- QR codes

@dataclass(frozen=True)
class QrScene:
    """How a phone screen with a QR code appears to the kiosk camera."""

    size: tuple[int, int] = (640, 480)
    code_fraction: float = 0.35  # QR side as a fraction of frame height
    tilt_deg: float = 0.0  # perspective tilt of the phone
    rotation_deg: float = 0.0
    blur_sigma: float = 0.0
    glare: float = 0.0  # 0..1, a bright blob washing out part of the code
    contrast: float = 1.0  # 1 = black on white; 0.3 = grey on grey
    noise_sigma: float = 2.0
    seed: int = 0
    inverted: bool = False  # light modules on a dark screen (a phone's dark mode)


def random_qr_scene(rng: np.random.Generator, size: tuple[int, int], **overrides: object) -> QrScene:
    """A plausible hold-up: some tilt and rotation, mild blur, sometimes glare or dim screen."""
    scene = QrScene(
        size=size,
        code_fraction=float(rng.uniform(0.3, 0.55)),
        tilt_deg=float(rng.uniform(-25, 25)),
        rotation_deg=float(rng.uniform(-20, 20)),
        blur_sigma=float(rng.choice([0.0, 0.6, 1.0, 1.6])),
        glare=float(rng.choice([0.0, 0.0, 0.4, 0.7])),
        contrast=float(rng.choice([1.0, 1.0, 0.6, 0.35])),
        noise_sigma=float(rng.uniform(1, 5)),
        seed=int(rng.integers(0, 2**31)),
    )
    return replace(scene, **overrides)  # type: ignore[arg-type]


def render_qr_scene(text: str, scene: QrScene = QrScene()) -> np.ndarray:
    """A BGR kiosk-camera frame with a phone showing `text` as a QR code."""
    rng = np.random.default_rng(scene.seed)
    width, height = scene.size
    frame = _kiosk_background(rng, width, height)
    screen = _phone_screen(text, int(height * scene.code_fraction), scene.contrast,
                           scene.inverted)
    corners = _screen_corners(rng, scene, screen.shape[1], screen.shape[0], width, height)
    src = np.float32([[0, 0], [screen.shape[1], 0], [screen.shape[1], screen.shape[0]],
                      [0, screen.shape[0]]])
    warp = cv2.getPerspectiveTransform(src, corners)
    warped = cv2.warpPerspective(screen, warp, (width, height), flags=cv2.INTER_LINEAR,
                                 borderValue=0)
    coverage = cv2.warpPerspective(np.full(screen.shape, 255, np.uint8), warp, (width, height))
    frame = np.where(coverage[..., None] > 127, warped[..., None].astype(np.float32), frame)
    frame = _glare(frame, rng, scene.glare, corners)
    if scene.blur_sigma > 0:
        frame = cv2.GaussianBlur(frame, (0, 0), scene.blur_sigma)
    frame = frame + rng.normal(0, scene.noise_sigma, frame.shape)
    return np.clip(frame, 0, 255).astype(np.uint8)


def render_empty_scene(size: tuple[int, int] = (640, 480), seed: int = 0) -> np.ndarray:
    """The kiosk camera with nobody in front of it."""
    rng = np.random.default_rng(seed)
    frame = _kiosk_background(rng, *size)
    return np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8)


def _kiosk_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    shade = cv2.resize(rng.uniform(60, 170, (3, 4, 3)).astype(np.float32), (width, height),
                       interpolation=cv2.INTER_CUBIC)
    for _ in range(6):  # clutter: a hand, a sleeve, posters behind
        colour = tuple(float(c) for c in rng.uniform(30, 220, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        cv2.rectangle(shade, (x, y), (x + int(rng.integers(40, width // 3)),
                                      y + int(rng.integers(40, height // 3))), colour, -1)
    return shade


def _phone_screen(text: str, code_px: int, contrast: float, inverted: bool = False
                  ) -> np.ndarray:
    matrix = np.array(segno.make_qr(text, error="m").matrix, dtype=np.uint8)
    modules = matrix.shape[0] + 8  # quiet zone of 4 modules each side
    module_px = max(round(code_px / modules), 2)
    padded = np.pad(matrix, 4)
    code = np.kron(padded, np.ones((module_px, module_px), np.uint8))
    dark, light = 128 - 110 * contrast, 128 + 110 * contrast
    if inverted:
        dark, light = light, dark
    screen = np.where(code == 1, dark, light).astype(np.float32)
    bezel = max(module_px * 3, 8)
    phone = np.pad(screen, ((bezel * 3, bezel * 2), (bezel, bezel)), constant_values=light)
    return np.pad(phone, 6, constant_values=20.0)  # the phone's dark frame


def _screen_corners(rng: np.random.Generator, scene: QrScene, w: int, h: int,
                    width: int, height: int) -> np.ndarray:
    tilt = math.radians(scene.tilt_deg)
    shrink = 1 - abs(math.sin(tilt)) * 0.5  # one side recedes from the camera
    half = np.array([w / 2, h / 2])
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * half
    if tilt > 0:
        corners[[1, 2], 1] *= shrink
    else:
        corners[[0, 3], 1] *= shrink
    rot = math.radians(scene.rotation_deg)
    rotation = np.array([[math.cos(rot), -math.sin(rot)], [math.sin(rot), math.cos(rot)]])
    corners = corners @ rotation.T
    extent = np.abs(corners).max(axis=0)
    margin = np.maximum(np.array([width / 2, height / 2]) - extent - 4, 0)
    centre = np.array([width / 2, height / 2]) + rng.uniform(-1, 1, 2) * margin * 0.8
    return (corners + centre).astype(np.float32)


def _glare(frame: np.ndarray, rng: np.random.Generator, strength: float,
           corners: np.ndarray) -> np.ndarray:
    if strength <= 0:
        return frame
    height, width = frame.shape[:2]
    spot = corners.mean(axis=0) + rng.uniform(-0.3, 0.3, 2) * (corners.max(0) - corners.min(0))
    spread = (corners.max(0) - corners.min(0)).mean() * 0.25
    ys, xs = np.mgrid[0:height, 0:width]
    blob = np.exp(-(((xs - spot[0]) ** 2 + (ys - spot[1]) ** 2) / (2 * spread**2)))
    return frame + (255 - frame) * (strength * blob)[..., None]


# ----------------------------------------------------------------------------- camera

Scene = Callable[[], np.ndarray]

# Eyes with one thing wrong, for the kiosk's simulate-only control and tests: what each
# changes in a capture. The iris gates judge the frames; these only make the trouble.
EYE_TROUBLES: dict[str, dict[str, object]] = {
    "too_far": {"scale": 0.55, "blur_sigma": 0.4},
    "blurred": {"blur_sigma": 12.0},  # moving, or out of focus
    "closed": {"upper_lid": 0.0},  # the upper lid down to the pupil's middle
    "glasses": {"lens_glare": 3},
    "too_bright": {"exposure": 2.6},  # sunlight on the face
}


class SimulatedCamera:
    """A CameraSource that plays scenes in order. Each `show_*` queues a scene; a scene with
    `frames=None` is held until a later scene is queued, a scene with a count plays that many
    frames. With nothing queued the camera shows the empty kiosk. Frames are BGR uint8,
    paced at `fps` (None: as fast as asked, for benchmarks)."""

    def __init__(self, size: tuple[int, int] = (640, 480), fps: float | None = 30.0,
                 seed: int = 0) -> None:
        self.size = size
        self._interval = 1.0 / fps if fps else 0.0
        self._rng = np.random.default_rng(seed)
        self._queue: collections.deque[tuple[Scene, int | None]] = collections.deque()
        self._current: tuple[Scene, int | None] | None = None
        self._lock = threading.Lock()
        self._next_frame_at = 0.0
        self._empty = _bgr(render_empty_scene(size, seed))
        self._irises: dict[int, SyntheticIris] = {}
        self.frames_read = 0
        # The simulated NIR illuminator (edge.drivers.camera.Illuminator): which LED is
        # lit, and since which frame. Live eyes answer it; prints and screens do not.
        self._frame_s = 1.0 / (fps or 15.0)  # scene time per frame, paced or not
        self.pattern = "left"
        self._pattern_since = 0

    def show_qr(self, text: str, *, frames: int | None = None, **scene: object) -> None:
        options = {"size": self.size, "seed": int(self._rng.integers(0, 2**31)), **scene}
        frame = render_qr_scene(text, QrScene(**options))  # type: ignore[arg-type]
        self._enqueue(lambda: frame, frames)

    def show_eye(self, person_id: int, *, frames: int | None = None, **capture: object) -> None:
        """Live captures of one person's eye: each frame is a new capture, varied like a
        person standing at the kiosk, unless `capture` fixes a parameter (e.g. blur_sigma)
        or names a `trouble` (a key of EYE_TROUBLES: "too_far", "blurred", "closed", ...).
        The eye answers the illuminator: the LED's glint sits on the side of the lit LED,
        and the pupil narrows after the switch to the brighter pattern."""
        iris = self._iris(person_id)
        rng = np.random.default_rng(self._rng.integers(0, 2**31))
        trouble = capture.pop("trouble", None)
        if trouble is not None:  # one of EYE_TROUBLES, unless `capture` says otherwise
            capture = {**EYE_TROUBLES[str(trouble)], **capture}
        resting = float(capture.pop("pupil_ratio", rng.uniform(0.3, 0.45)))  # type: ignore[arg-type]
        capture.setdefault("reflections", 0)

        def live() -> np.ndarray:
            pattern, since = self._light()
            ratio = resting * pupil_light_response(pattern, since) * (1 + rng.normal(0, 0.008))
            options = {"pupil_ratio": ratio, "led_glint": LED_GLINTS.get(pattern), **capture}
            return _bgr(render_eye(iris, random_capture(rng, **options), self.size))

        self._enqueue(live, frames)

    def show_print(self, person_id: int, *, medium: str = "paper", frames: int | None = None,
                   **capture: object) -> None:
        """A presentation attack: an enrolled person's eye, photographed once (glint and
        all), held up as a paper print or replayed on a phone screen. `medium`: "paper"
        (halftone dots), "photo" (a clean print, no dots: only liveness can tell), or
        "screen" (a video replay: pixel grid, the pupil narrowing on the video's own
        schedule, and the glass mirroring the kiosk's LED as a large moving patch)."""
        if medium not in ("paper", "photo", "screen"):
            raise ValueError("medium must be paper, photo or screen")
        iris = self._iris(person_id)
        rng = np.random.default_rng(self._rng.integers(0, 2**31))
        options = {"reflections": 0, "led_glint": LED_GLINTS["left"], **capture}
        still = random_capture(rng, **options)
        played = [0]

        def attack() -> np.ndarray:
            shot = still
            if medium == "screen":  # the video's pupil narrows and widens by itself
                phase = math.sin(played[0] * self._frame_s * 2 * math.pi / 3.0)
                shot = replace(still, pupil_ratio=still.pupil_ratio * (1 - 0.1 * phase))
            played[0] += 1
            photo = render_eye(iris, shot, self.size).astype(np.float32)
            return _bgr(present_on_medium(photo, medium, self.pattern, rng))

        self._enqueue(attack, frames)

    def set_pattern(self, pattern: str) -> None:
        """Illuminator: light the "left" LED (dim) or the "right" one (bright), or "off"."""
        if pattern not in ("left", "right", "off"):
            raise ValueError("pattern must be left, right or off")
        with self._lock:
            if pattern != self.pattern:
                self.pattern, self._pattern_since = pattern, self.frames_read

    def _light(self) -> tuple[str, float]:
        return self.pattern, (self.frames_read - self._pattern_since) * self._frame_s

    def _iris(self, person_id: int) -> SyntheticIris:
        iris = self._irises.get(person_id)
        if iris is None:
            iris = self._irises[person_id] = SyntheticIris(person_id)
        return iris

    def show_nothing(self, *, frames: int | None = None) -> None:
        self._enqueue(lambda: self._empty, frames)

    def fail(self, failing: bool = True) -> None:
        """Fault injection: while failing, read() gives no picture (unplugged, broken)."""
        self._failing = failing

    def read(self) -> np.ndarray | None:
        if getattr(self, "_failing", False):
            return None
        self._pace()
        with self._lock:
            scene = self._advance()
        self.frames_read += 1
        return self._empty.copy() if scene is None else scene().copy()

    def close(self) -> None:
        with self._lock:
            self._queue.clear()
            self._current = None

    def _enqueue(self, scene: Scene, frames: int | None) -> None:
        if frames is not None and frames < 1:
            raise ValueError("frames must be at least 1, or None to hold the scene")
        with self._lock:
            self._queue.append((scene, frames))

    def _advance(self) -> Scene | None:
        current = self._current
        if current is None or current[1] == 0 or (current[1] is None and self._queue):
            current = self._queue.popleft() if self._queue else None
        if current is None:
            self._current = None
            return None
        scene, left = current
        self._current = (scene, None if left is None else left - 1)
        return scene

    def _pace(self) -> None:
        if not self._interval:
            return
        now = time.monotonic()
        if self._next_frame_at > now:
            time.sleep(self._next_frame_at - now)
        self._next_frame_at = max(now, self._next_frame_at) + self._interval


def _bgr(gray: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR) if gray.ndim == 2 else gray
