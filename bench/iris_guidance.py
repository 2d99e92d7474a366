"""Iris live guidance (ADR 0144): how often the screen hears a verdict, how soon after the
eye changes, what it costs, and what the live-eye check adds to an enrolment capture.

    .venv/bin/python bench/iris_guidance.py            # 20 s per scene, 20 switches, 6 captures
    .venv/bin/python bench/iris_guidance.py --quick    # 5 s per scene, 8 switches, 3 captures

The guide runs in a real IrisService on a temporary database. Its camera replays frames
the simulator rendered beforehand at the iris camera's 15 fps, so the figures are the
guide's and the gates', not the simulator's rendering. Enrolment captures use the live
simulated camera (it must answer the illuminator), whose rendering is counted in.
"""
from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.clock import FakeClock  # noqa: E402
from edge.identity import TemplateCipher  # noqa: E402
from edge.identity.service import IrisService  # noqa: E402
from edge.storage import Database  # noqa: E402
from simulators.camera import SimulatedCamera  # noqa: E402

FPS = 15.0
SCENES = {"live": "ok", "too_far": "too_far", "blurred": "blurred", "closed": "covered",
          "glasses": "glasses", "too_bright": "too_bright"}
FRAMES_PER_SCENE = 24


class ReplayCamera:
    """Frames rendered beforehand, served in a loop at the camera's frame rate."""

    def __init__(self, scenes: dict[str, list[np.ndarray]]) -> None:
        self._scenes, self.scene, self._i = scenes, "live", 0
        self._next = 0.0
        self.reads = 0

    def show(self, scene: str) -> None:
        self.scene, self._i = scene, 0

    def read(self) -> np.ndarray:
        now = time.monotonic()
        if self._next > now:
            time.sleep(self._next - now)
        self._next = max(now, self._next) + 1 / FPS
        frames = self._scenes[self.scene]
        self._i, self.reads = self._i + 1, self.reads + 1
        return frames[self._i % len(frames)]

    def close(self) -> None:
        pass


def render_scenes() -> dict[str, list[np.ndarray]]:
    rendered = {}
    for scene in SCENES:
        camera = SimulatedCamera(fps=None, seed=5)
        if scene == "live":
            camera.show_eye(4711)
        else:
            camera.show_eye(4711, trouble=scene)
        rendered[scene] = [camera.read() for _ in range(FRAMES_PER_SCENE)]
    return rendered


def service(db_dir: Path, camera: object, illuminator: object | None) -> IrisService:
    db = Database(db_dir / "edge.sqlite3")
    db.upgrade()
    built = IrisService(db, FakeClock(), TemplateCipher(bytes(32)), camera,  # type: ignore[arg-type]
                        illuminator=illuminator)  # type: ignore[arg-type]
    built.start()
    return built


def guide_figures(seconds: float, switches: int) -> None:
    camera = ReplayCamera(render_scenes())
    with tempfile.TemporaryDirectory() as tmp:
        iris = service(Path(tmp), camera, None)
        verdicts: list[tuple[float, str]] = []
        changed = threading.Event()

        def on_change() -> None:
            verdicts.append((time.monotonic(), iris.guidance().code))
            changed.set()

        print(f"guide: frames judged per second and verdicts per scene ({seconds:.0f} s each, "
              f"camera at {FPS:.0f} fps, replayed)")
        print(f"  {'scene':<11} {'judged/s':>8} {'CPU/s':>6}  words shown (share of the time)")
        with iris.guiding(on_change):
            for scene, expected in SCENES.items():
                camera.show(scene)
                seen: collections.Counter[str] = collections.Counter()
                reads, cpu, started = camera.reads, time.process_time(), time.monotonic()
                while time.monotonic() - started < seconds:  # what the screen shows, sampled
                    seen[iris.guidance().code] += 1
                    time.sleep(0.02)
                wall = time.monotonic() - started
                rate = (camera.reads - reads) / wall
                share = ", ".join(f"{c} {n / max(sum(seen.values()), 1):.0%}"
                                  for c, n in seen.most_common(3))
                print(f"  {scene:<11} {rate:8.1f} {(time.process_time() - cpu) / wall:6.2f}  "
                      f"{share}   (gates should say: {expected})")

            latencies = []
            order = ["too_far", "live", "closed", "live", "blurred", "live"]
            for i in range(switches):
                scene = order[i % len(order)]
                expected = SCENES[scene]
                verdicts.clear()
                switched = time.monotonic()
                camera.show(scene)
                deadline = switched + 5
                while time.monotonic() < deadline:
                    hit = [t for t, c in verdicts if c == expected]
                    if hit:
                        latencies.append((hit[0] - switched) * 1000)
                        break
                    changed.wait(0.2)
                    changed.clear()
        iris.stop()
    latencies.sort()
    print(f"scene change -> new words published: {len(latencies)}/{switches} switches, "
          f"median {statistics.median(latencies):.0f} ms, max {latencies[-1]:.0f} ms "
          "(the stream sends it at once; frame interval 67 ms, guide interval 150 ms)")


def capture_figures(captures: int) -> None:
    for live in (False, True):
        camera = SimulatedCamera(fps=FPS, seed=8)
        camera.show_eye(4711)
        with tempfile.TemporaryDirectory() as tmp:
            iris = service(Path(tmp), camera, camera)
            walls, frames = [], []
            for _ in range(captures):
                reads, started = camera.frames_read, time.monotonic()
                quality, _template = iris._capture(live=live)  # the screen's capture, timed alone
                walls.append((time.monotonic() - started) * 1000)
                frames.append(camera.frames_read - reads)
                assert quality.ok, quality
            iris.stop()
        label = "with live-eye check" if live else "gates only (before)"
        print(f"enrolment capture, {label:<20}: median {statistics.median(walls):6.0f} ms wall, "
              f"{statistics.median(frames):.0f} frames read (live simulated camera at {FPS:.0f} fps, "
              "rendering included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    guide_figures(5.0 if args.quick else 20.0, 8 if args.quick else 20)
    capture_figures(3 if args.quick else 6)


if __name__ == "__main__":
    main()
