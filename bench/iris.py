"""Iris recognition on a synthetic population: enrolment, accuracy, speed.

    .venv/bin/python bench/iris.py            # 200 people, 10,000-template gallery
    .venv/bin/python bench/iris.py --quick    # 40 people, 2,000-template gallery
    .venv/bin/python bench/iris.py --dataset DIR --layout mmu1|casia   # real NIR eyes

Prints failure-to-enrol, genuine and impostor distance distributions, EER, FNMR at
FMR = 1e-4, what the chosen thresholds do, extraction time per image and 1:N search time.
Eyes come from simulators/camera.py; the large gallery is filled up with synthetic codes.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.identity.iris import (  # noqa: E402
    ANGLES,
    BANDS,
    ENROL_AGREEMENT,
    MATCH_THRESHOLD,
    NEAR_MISS_THRESHOLD,
    IrisTemplate,
    extract,
    hamming_distance,
)
from edge.identity.iris_enrol import enrol_templates  # noqa: E402
from edge.identity.templates import IrisGallery  # noqa: E402
from simulators.camera import EyeCapture, SyntheticIris, random_capture, render_eye  # noqa: E402

ENROL_CAPTURES = 3
ENROL_FRAMES = 6  # frames an enrol attempt looks at to find ENROL_CAPTURES good ones
ENROL_ATTEMPTS = 2  # the kiosk asks once more after a failed enrolment
PROBES_PER_PERSON = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--people", type=int)
    parser.add_argument("--gallery", type=int)
    parser.add_argument("--dataset", type=Path, help="a folder of real eye images (read only)")
    parser.add_argument("--layout", choices=["mmu1", "casia"], default="mmu1",
                        help="how the dataset's files map to eye and session")
    parser.add_argument("--scale", type=float,
                        help="resize factor for dataset frames (default: to 640 px wide)")
    args = parser.parse_args()
    if args.dataset is not None:
        from bench.iris_real import run_dataset

        run_dataset(args.dataset, args.layout, args.scale)
        return
    people = args.people or (40 if args.quick else 200)
    gallery_size = args.gallery or (2_000 if args.quick else 10_000)
    rng = np.random.default_rng(20261121)

    print(f"population: {people} synthetic people, {ENROL_CAPTURES} good captures of "
          f"{ENROL_FRAMES} frames to enrol (up to {ENROL_ATTEMPTS} attempts), {PROBES_PER_PERSON} probe captures each; "
          f"13% of captures are blurred, blinked or off-centre")
    enrolled, probes, extract_ms, refusals, failed = build_population(people, rng)
    print(f"failure to enrol: {failed}/{people} = {failed / people:.1%}")
    print(f"capture refusals by the quality gates: {format_counts(refusals)}")
    print(f"extraction per image: median {statistics.median(extract_ms):.1f} ms, "
          f"p95 {np.percentile(extract_ms, 95):.1f} ms, max {max(extract_ms):.1f} ms")

    genuine, impostor = distance_sets(enrolled, probes)
    print(f"\ngenuine comparisons: {len(genuine)}, impostor comparisons: {len(impostor)}")
    summarise("genuine", genuine)
    summarise("impostor", impostor)
    summarise("capture pairs", capture_pairs(probes))
    print(f"  (two raw captures of one eye, no fused template: what enrolment's agreement "
          f"check at {ENROL_AGREEMENT} sees)")
    print_histogram(genuine, impostor)
    print_error_rates(genuine, impostor)
    identification(enrolled, probes, gallery_size, rng)


def kiosk_capture(rng: np.random.Generator) -> EyeCapture:
    """Mostly good captures, with the misses a kiosk sees: motion blur, a blink, a person
    standing off to one side."""
    roll = rng.random()
    if roll < 0.05:
        return random_capture(rng, blur_sigma=float(rng.uniform(3.5, 7)))
    if roll < 0.10:
        return random_capture(rng, upper_lid=float(rng.uniform(-0.2, 0.2)),
                              lower_lid=float(rng.uniform(0.3, 0.6)))
    if roll < 0.13:
        return random_capture(rng, offset=(float(rng.choice([-1, 1]) * rng.uniform(190, 260)),
                                           0.0))
    return random_capture(rng)


def build_population(people: int, rng: np.random.Generator):
    enrolled: dict[str, IrisTemplate] = {}
    probes: list[tuple[str, IrisTemplate]] = []
    extract_ms: list[float] = []
    refusals: dict[str, int] = {}
    failed = 0
    for person in range(people):
        iris = SyntheticIris(person)
        subject = f"res-{person:05d}"
        result = None
        for _ in range(ENROL_ATTEMPTS):
            good: list[IrisTemplate] = []
            for _ in range(ENROL_FRAMES):  # the enrol screen keeps the good frames
                extraction = extract(render_eye(iris, kiosk_capture(rng)))
                if extraction.template is None:
                    code = extraction.quality.code
                    refusals[code] = refusals.get(code, 0) + 1
                else:
                    good.append(extraction.template)
                if len(good) == ENROL_CAPTURES:
                    break
            result = enrol_templates(good)
            if result.ok:
                break
        if result is None or result.template is None:
            failed += 1
            continue
        enrolled[subject] = result.template
        for _ in range(PROBES_PER_PERSON):
            frame = render_eye(iris, kiosk_capture(rng))
            started = time.perf_counter()
            extraction = extract(frame)
            extract_ms.append((time.perf_counter() - started) * 1000)
            if extraction.template is None:
                refusals[extraction.quality.code] = refusals.get(extraction.quality.code, 0) + 1
            else:
                probes.append((subject, extraction.template))
    return enrolled, probes, extract_ms, refusals, failed


def distance_sets(enrolled: dict[str, IrisTemplate], probes: list[tuple[str, IrisTemplate]]
                  ) -> tuple[np.ndarray, np.ndarray]:
    gallery = IrisGallery()
    gallery.add_many(enrolled.items())
    genuine, impostor = [], []
    for subject, probe in probes:
        for other, distance in gallery.distances(probe).items():
            (genuine if other == subject else impostor).append(distance)
    return np.array(genuine), np.array(impostor)


def capture_pairs(probes: list[tuple[str, IrisTemplate]]) -> np.ndarray:
    by_subject: dict[str, list[IrisTemplate]] = {}
    for subject, probe in probes:
        by_subject.setdefault(subject, []).append(probe)
    return np.array([hamming_distance(pair[0], pair[1])[0]
                     for pair in by_subject.values() if len(pair) >= 2])


def summarise(name: str, values: np.ndarray) -> None:
    p = np.percentile(values, [0, 1, 5, 50, 95, 99, 100])
    print(f"{name:>13}: mean {values.mean():.3f} sd {values.std():.3f} | min {p[0]:.3f} "
          f"p1 {p[1]:.3f} p5 {p[2]:.3f} median {p[3]:.3f} p95 {p[4]:.3f} p99 {p[5]:.3f} "
          f"max {p[6]:.3f}")


def print_histogram(genuine: np.ndarray, impostor: np.ndarray) -> None:
    print("\ndistance   genuine                         impostor")
    edges = np.arange(0.0, 0.62, 0.02)
    g_counts, _ = np.histogram(genuine, edges)
    i_counts, _ = np.histogram(impostor, edges)
    for low, g, i in zip(edges, g_counts, i_counts):
        if g == 0 and i == 0:
            continue
        g_bar = "#" * int(np.ceil(30 * g / max(g_counts.max(), 1)))
        i_bar = "#" * int(np.ceil(30 * i / max(i_counts.max(), 1)))
        marker = " <- match threshold" if np.isclose(low + 0.02, MATCH_THRESHOLD) else ""
        print(f"{low:.2f}-{low + 0.02:.2f} {g:6d} {g_bar:<30} {i:7d} {i_bar}{marker}")


def print_error_rates(genuine: np.ndarray, impostor: np.ndarray) -> None:
    thresholds = np.linspace(0, 0.6, 1201)
    fmr = np.array([(impostor < t).mean() for t in thresholds])
    fnmr = np.array([(genuine >= t).mean() for t in thresholds])
    eer_at = int(np.argmin(np.abs(fmr - fnmr)))
    print(f"\nEER: {(fmr[eer_at] + fnmr[eer_at]) / 2:.4%} at distance {thresholds[eer_at]:.3f}")
    allowed = thresholds[fmr <= 1e-4].max()
    print(f"FNMR at FMR=1e-4: {(genuine >= allowed).mean():.4%} (threshold {allowed:.3f}; "
          f"{len(impostor)} impostor comparisons resolve FMR down to {1 / len(impostor):.1e})")
    print(f"impostor margin: nearest impostor {impostor.min():.3f}, match threshold "
          f"{MATCH_THRESHOLD}, near-miss bound {NEAR_MISS_THRESHOLD}")
    print(f"at the match threshold {MATCH_THRESHOLD}: false matches "
          f"{int((impostor < MATCH_THRESHOLD).sum())}/{len(impostor)}, false non-matches "
          f"{int((genuine >= MATCH_THRESHOLD).sum())}/{len(genuine)} "
          f"(of which near misses, asked for the code: "
          f"{int(((genuine >= MATCH_THRESHOLD) & (genuine < NEAR_MISS_THRESHOLD)).sum())}); "
          f"impostors in the near-miss band: "
          f"{int(((impostor >= MATCH_THRESHOLD) & (impostor < NEAR_MISS_THRESHOLD)).sum())}")


def filler_template(rng: np.random.Generator) -> IrisTemplate:
    """A stand-in enrolled eye: smooth phase along the angle, like a real IrisCode."""
    noise = rng.normal(size=(BANDS, ANGLES)) + 1j * rng.normal(size=(BANDS, ANGLES))
    spectrum = np.fft.fft(noise, axis=1) * np.exp(-0.5 * (np.fft.fftfreq(ANGLES) * 16) ** 2)
    smooth = np.fft.ifft(spectrum, axis=1)
    code = np.stack([smooth.real > 0, smooth.imag > 0], axis=-1)
    mask = np.repeat((rng.random((BANDS, ANGLES)) < 0.8)[..., None], 2, axis=-1)
    return IrisTemplate.from_bits(code, mask)


def identification(enrolled: dict[str, IrisTemplate], probes: list[tuple[str, IrisTemplate]],
                   gallery_size: int, rng: np.random.Generator) -> None:
    gallery = IrisGallery()
    gallery.add_many(enrolled.items())
    filler = max(gallery_size - len(enrolled), 0)
    gallery.add_many((f"filler-{i:06d}", filler_template(rng)) for i in range(filler))
    timings, outcomes = [], {"match": 0, "near_miss": 0, "no_match": 0}
    wrong = 0
    for subject, probe in probes:
        started = time.perf_counter()
        match = gallery.search(probe)
        timings.append((time.perf_counter() - started) * 1000)
        outcomes[match.decision] += 1
        if match.decision == "match" and match.subject_id != subject:
            wrong += 1
    print(f"\n1:N identification over {len(gallery)} templates ({len(enrolled)} enrolled "
          f"eyes + {filler} synthetic codes), {len(probes)} probes:")
    print(f"  decisions: {format_counts(outcomes)}; wrong person opened: {wrong}")
    print(f"  search time: median {statistics.median(timings):.1f} ms, "
          f"p95 {np.percentile(timings, 95):.1f} ms")
    exhaustive_agrees = sum(
        gallery.search(p).subject_id == min(d := gallery.distances(p), key=d.get)
        for _, p in probes[:50])
    print(f"  two-pass search agrees with exhaustive on {exhaustive_agrees}/"
          f"{min(len(probes), 50)} probes")
    stranger = extract(render_eye(SyntheticIris(10**6), random_capture(rng))).template
    if stranger is not None:
        match = gallery.search(stranger)
        print(f"  an unenrolled stranger: nearest {match.distance:.3f} -> {match.decision}")


def format_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


if __name__ == "__main__":
    main()
