"""Real near-infrared eye images for bench/iris.py --dataset: how files map to eyes.

Nothing here copies, writes or keeps an image: each file is read, extracted, and dropped.
Layouts:
- mmu1: PP/left/N.png, PP/right/N.png (MMU1): eye = person + side, capture N (1-5), no
  sessions; the first captures enrol, the later ones are the "later visits".
- casia: NNN/S/NNN_S_K.bmp (CASIA-IrisV1): eye NNN, session S; session 1 enrols,
  session 2 is the later visit.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = {".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".pgm"}
KIOSK_WIDTH = 640  # the kiosk's iris camera: frames are scaled to this width (same view)


@dataclass(frozen=True)
class Capture:
    eye: str
    session: int  # 1: enrolment visit, 2: later visit; MMU1 has one session
    index: int
    path: Path

    def frame(self, scale: float) -> np.ndarray:
        gray = cv2.imread(str(self.path), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            raise ValueError(f"not a readable image: {self.path.name}")
        if scale != 1.0:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        return gray


def load_layout(root: Path, layout: str) -> dict[str, list[Capture]]:
    """Captures per eye, in capture order."""
    if not root.is_dir():
        raise SystemExit(f"--dataset: {root} is not a folder")
    parse = {"mmu1": _mmu1, "casia": _casia}.get(layout)
    if parse is None:
        raise SystemExit("--layout must be mmu1 or casia")
    eyes: dict[str, list[Capture]] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        capture = parse(root, path)
        if capture is not None:
            eyes.setdefault(capture.eye, []).append(capture)
    for captures in eyes.values():
        captures.sort(key=lambda c: (c.session, c.index))
    if not eyes:
        raise SystemExit(f"--dataset: no {layout} images under {root}")
    return eyes


def _mmu1(root: Path, path: Path) -> Capture | None:
    parts = path.relative_to(root).parts
    if len(parts) != 3 or parts[1] not in ("left", "right") or not path.stem.isdigit():
        return None
    return Capture(f"{parts[0]}-{parts[1]}", 1, int(path.stem), path)


def _casia(root: Path, path: Path) -> Capture | None:
    found = re.fullmatch(r"(\d+)_(\d)_(\d+)", path.stem)
    if found is None:
        return None
    return Capture(found[1], int(found[2]), int(found[3]), path)


def kiosk_scale(captures: dict[str, list[Capture]]) -> float:
    """The factor that brings the set's frames to the kiosk camera's width."""
    first = next(iter(captures.values()))[0]
    width = first.frame(1.0).shape[1]
    return KIOSK_WIDTH / width
