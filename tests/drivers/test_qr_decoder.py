"""The QR decoder on simulated kiosk-camera frames, through the real zxing-cpp/OpenCV."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.drivers.qr import QrDecoder, decode_image_file
from simulators.camera import QrScene, random_qr_scene, render_empty_scene, render_qr_scene

TOKEN = "P1.AAECAwQFBgdnK7sAATEyMzQ1Njc4OS1QQVJDRUwtMDAx.q83vEjRWeJq83vEjRWeJqw"


@pytest.mark.parametrize("size", [(640, 480), (1280, 720)])
def test_decodes_typical_kiosk_frames(size: tuple[int, int]) -> None:
    decoder = QrDecoder()
    rng = np.random.default_rng(11)
    scenes = [random_qr_scene(rng, size, blur_sigma=0.6, glare=0.0, contrast=1.0)
              for _ in range(8)]
    assert all(decoder.decode(render_qr_scene(TOKEN, scene)) == [TOKEN] for scene in scenes)


def test_contrast_retry_reads_a_dim_glaring_screen_plain_zxing_misses() -> None:
    # A washed-out phone screen: zxing alone fails, the equalised retry reads it.
    scene = QrScene(size=(640, 480), code_fraction=0.42, tilt_deg=16, rotation_deg=5,
                    blur_sigma=1.6, glare=0.7, contrast=0.35, seed=1)
    frame = render_qr_scene(TOKEN, scene)
    assert QrDecoder(enhance_retry=False, second_pass=False).decode(frame) == []
    assert QrDecoder().decode(frame) == [TOKEN]


def test_opencv_fallback_alone_reads_a_clean_frame() -> None:
    frame = render_qr_scene("R1-fallback", QrScene(code_fraction=0.5, seed=1))
    decoder = QrDecoder(opencv_fallback=True)
    assert decoder._opencv(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)) == ["R1-fallback"]


def test_empty_scene_reads_nothing() -> None:
    assert QrDecoder(opencv_fallback=True).decode(render_empty_scene((640, 480), seed=2)) == []


def test_grayscale_and_bgra_frames_are_accepted() -> None:
    frame = render_qr_scene("hello", QrScene(seed=4))
    decoder = QrDecoder()
    assert decoder.decode(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)) == ["hello"]
    assert decoder.decode(cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA)) == ["hello"]


@pytest.mark.parametrize("frame", [
    np.zeros((0, 0), np.uint8), np.zeros((10, 10), np.float32), np.zeros((5, 5, 2), np.uint8),
])
def test_unusable_frames_are_a_clear_error(frame: np.ndarray) -> None:
    with pytest.raises(ValueError):
        QrDecoder().decode(frame)


def test_decode_image_file_for_diagnostics(tmp_path: Path) -> None:
    path = tmp_path / "shot.png"
    cv2.imwrite(str(path), render_qr_scene(TOKEN, QrScene(size=(1280, 720), seed=5)))
    [(text, ms)] = decode_image_file(path)
    assert text == TOKEN and ms > 0
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        decode_image_file(tmp_path / "junk.png")


def test_second_pass_reads_a_very_small_code_the_first_pass_misses() -> None:
    """The product decoder's second pass (2x upscale of the centre) on a code whose modules
    are under 2 px: the first pass alone reads nothing, both passes read the text."""
    import numpy as np

    from edge.drivers.qr import QrDecoder
    from simulators.camera import random_qr_scene, render_qr_scene

    text = "P1.second-pass-small-code-0123456789"
    rng = np.random.default_rng(5)
    rescued = 0
    for _ in range(60):
        scene = random_qr_scene(rng, (640, 480), code_fraction=0.1)
        frame = render_qr_scene(text, scene)
        if not QrDecoder(second_pass=False).decode(frame):
            rescued += QrDecoder().decode(frame) == [text]
    assert rescued >= 1


def test_an_inverted_dark_mode_code_is_read() -> None:
    from edge.drivers.qr import QrDecoder
    from simulators.camera import QrScene, render_qr_scene

    frame = render_qr_scene("P1.dark-mode", QrScene(inverted=True, code_fraction=0.4))
    assert QrDecoder().decode(frame) == ["P1.dark-mode"]
