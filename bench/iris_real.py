"""bench/iris.py --dataset DIR --layout mmu1|casia: the pipeline on real near-infrared eyes.

Every capture is extracted once (timed); an eye enrols from its first captures as the kiosk
would (three good ones, more while they disagree, keeping at least one capture back as a
later visit); every later capture is then searched 1:N among all enrolled eyes.
"""
from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.iris_dataset import Capture, kiosk_scale, load_layout
from edge.identity.iris import (
    MATCH_THRESHOLD,
    NEAR_MISS_THRESHOLD,
    Extraction,
    QualityLimits,
    IrisTemplate,
    extract,
    hamming_distance,
)
from edge.identity.iris_enrol import MIN_ENROL_CAPTURES, enrol_templates
from edge.identity.liveness import LivenessLimits, artefact_peak, eye_geometry
from edge.identity.templates import IrisGallery


@dataclass
class RealRun:
    eyes: int = 0
    captures: int = 0
    refusals: Counter = field(default_factory=Counter)
    extract_ms: list[float] = field(default_factory=list)
    extract_cpu_ms: list[float] = field(default_factory=list)  # the process's CPU (all threads): steadier under load
    enrolled: dict[str, IrisTemplate] = field(default_factory=dict)
    enrol_failures: Counter = field(default_factory=Counter)
    captures_to_enrol: Counter = field(default_factory=Counter)
    probes: list[tuple[str, IrisTemplate | None, str]] = field(default_factory=list)
    good: dict[str, list[IrisTemplate]] = field(default_factory=dict)


def extract_all(eyes: dict[str, list[Capture]], scale: float, run: RealRun
                ) -> dict[Capture, Extraction]:
    results = {}
    for captures in eyes.values():
        for capture in captures:
            frame = capture.frame(scale)
            started, cpu = time.perf_counter(), time.process_time()
            results[capture] = extract(frame)
            run.extract_ms.append((time.perf_counter() - started) * 1000)
            run.extract_cpu_ms.append((time.process_time() - cpu) * 1000)
            run.refusals[results[capture].quality.code] += 1
    run.captures = len(results)
    return results


def time_extraction(eyes: dict[str, list[Capture]], scale: float, repeats: int = 3) -> None:
    """Extraction alone, as the kiosk runs it: frames already in memory, one after the
    other, every frame `repeats` times. Wall time on a shared machine grows with its load,
    so the CPU time (all of the process's threads) and the load average are printed too."""
    frames = [capture.frame(scale) for captures in eyes.values() for capture in captures]
    load_before = os.getloadavg()[0]
    wall, cpu = [], []
    for _ in range(repeats):
        for frame in frames:
            started, cpu_started = time.perf_counter(), time.process_time()
            extract(frame)
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - cpu_started) * 1000)
    print(f"extraction alone ({len(frames)} frames x {repeats}): wall median "
          f"{statistics.median(wall):.1f} ms, p95 {np.percentile(wall, 95):.1f} ms; CPU median "
          f"{statistics.median(cpu):.1f} ms, p95 {np.percentile(cpu, 95):.1f} ms; load average "
          f"{load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def enrol_eye(captures: list[Capture], results: dict[Capture, Extraction], run: RealRun
              ) -> list[Capture]:
    """Enrol from the first captures (session 1 when there are sessions); returns the
    captures left for later visits."""
    sessions = {c.session for c in captures}
    pool = [c for c in captures if c.session == min(sessions)]
    later = [c for c in captures if c.session != min(sessions)]
    reserve = 0 if later else 1  # one session only: keep at least one capture back
    used, good = 0, []
    outcome = None
    for capture in pool[: len(pool) - reserve]:
        used += 1
        template = results[capture].template
        if template is not None:
            good.append(template)
        if len(good) >= MIN_ENROL_CAPTURES:
            outcome = enrol_templates(good)
            if outcome.ok:
                break
    eye = captures[0].eye
    if outcome is None or not outcome.ok:
        run.enrol_failures["too_few_captures" if outcome is None else outcome.code] += 1
    else:
        run.enrolled[eye] = outcome.template
        run.captures_to_enrol[used] += 1
    run.good[eye] = [results[c].template for c in captures if results[c].template is not None]
    return pool[used:] + later


def run_dataset(root: Path, layout: str, scale: float | None) -> None:
    eyes = load_layout(root, layout)
    scale = scale or kiosk_scale(eyes)
    run = RealRun(eyes=len(eyes))
    print(f"dataset: {root.name} ({layout}), {len(eyes)} eyes, "
          f"{sum(map(len, eyes.values()))} captures; frames scaled x{scale:g} to the kiosk "
          f"camera's width (a development set, not a certification)")
    print_gate_figures(eyes, scale)
    results = extract_all(eyes, scale, run)
    for eye, captures in eyes.items():
        for capture in enrol_eye(captures, results, run):
            outcome = results[capture]
            run.probes.append((eye, outcome.template, outcome.quality.code))

    refused = run.captures - run.refusals["ok"]
    print(f"captures refused by the quality gates: {refused}/{run.captures} = "
          f"{refused / run.captures:.1%}; by cause: "
          f"{_counts({k: v for k, v in run.refusals.items() if k != 'ok'})}")
    failed = run.eyes - len(run.enrolled)
    print(f"failure to enrol: {failed}/{run.eyes} eyes = {failed / run.eyes:.1%} "
          f"({_counts(run.enrol_failures)}); captures looked at to enrol: "
          f"{_counts(run.captures_to_enrol)}")
    print(f"extraction per image, in the pass above (reading and scaling in between): "
          f"median {statistics.median(run.extract_ms):.1f} ms, p95 "
          f"{np.percentile(run.extract_ms, 95):.1f} ms wall; CPU median "
          f"{statistics.median(run.extract_cpu_ms):.1f} ms")
    time_extraction(eyes, scale)
    genuine, impostor = probe_distances(run)
    pairs_genuine, pairs_impostor = capture_pair_distances(run)
    from bench.iris import print_error_rates, print_histogram, summarise  # shared printing

    print(f"\nprobe vs enrolled template: {len(genuine)} genuine, {len(impostor)} impostor")
    summarise("genuine", genuine)
    summarise("impostor", impostor)
    print(f"capture vs capture (every pair of good captures): {len(pairs_genuine)} genuine, "
          f"{len(pairs_impostor)} impostor")
    summarise("pair genuine", pairs_genuine)
    summarise("pair impostor", pairs_impostor)
    print(f"  d' (probe vs template) = {d_prime(genuine, impostor):.2f}")
    print_histogram(genuine, impostor)
    print_error_rates(genuine, impostor)
    identification(run)
    budget_report(run, genuine)


OPEN_GATES = QualityLimits(min_iris_radius=0, max_iris_radius=1e9, max_centre_offset=1.0,
                           edge_margin=-1e9, min_sharpness=0, min_usable=0,
                           min_pupil_roundness=0, min_limbus_jump=-1e9,
                           min_sclera_contrast=-1e9, max_iris_brightness=1e9,
                           max_reflection=1e9)
GATE_FIGURES = ["pupil_roundness", "iris_r", "sharpness", "limbus_jump", "sclera_contrast",
                "iris_brightness", "reflection", "usable"]


def print_gate_figures(eyes: dict[str, list[Capture]], scale: float) -> None:
    """What each quality gate measures, on every capture with every gate open: the
    distribution a gate's threshold is chosen from (ADR 0140)."""
    figures: dict[str, list[float]] = {name: [] for name in [*GATE_FIGURES, "artefact_peak"]}
    for captures in eyes.values():
        for capture in captures:
            frame = capture.frame(scale)
            metrics = extract(frame, OPEN_GATES).quality.metrics
            for name in GATE_FIGURES:
                if name in metrics:
                    figures[name].append(metrics[name])
            eye = eye_geometry(frame)
            if eye is not None:  # the liveness texture check, on live real eyes
                figures["artefact_peak"].append(artefact_peak(frame, eye.iris))
    limits = QualityLimits()
    print("gate figures with every gate open (p1 p5 p50 p95 p99 | shipped limit):")
    for name, values in figures.items():
        if not values:
            continue
        p = np.percentile(values, [1, 5, 50, 95, 99])
        limit = {"pupil_roundness": limits.min_pupil_roundness, "iris_r": limits.min_iris_radius,
                 "sharpness": limits.min_sharpness, "limbus_jump": limits.min_limbus_jump,
                 "sclera_contrast": limits.min_sclera_contrast,
                 "iris_brightness": limits.max_iris_brightness,
                 "reflection": limits.max_reflection, "usable": limits.min_usable,
                 "artefact_peak": LivenessLimits().max_artefact_peak}[name]
        print(f"  {name:>16} n={len(values):4d}: " + " ".join(f"{v:8.3f}" for v in p)
              + f" | {limit:g}")


def probe_distances(run: RealRun) -> tuple[np.ndarray, np.ndarray]:
    gallery = IrisGallery()
    gallery.add_many(run.enrolled.items())
    genuine, impostor = [], []
    for eye, probe, _ in run.probes:
        if probe is None or eye not in run.enrolled:
            continue
        for other, distance in gallery.distances(probe).items():
            (genuine if other == eye else impostor).append(distance)
    return np.array(genuine), np.array(impostor)


def capture_pair_distances(run: RealRun) -> tuple[np.ndarray, np.ndarray]:
    items = [(eye, t) for eye, templates in run.good.items() for t in templates]
    gallery = IrisGallery()
    gallery.add_many((f"{i}", t) for i, (_, t) in enumerate(items))
    genuine, impostor = [], []
    for i, (eye, probe) in enumerate(items):
        for key, distance in gallery.distances(probe).items():
            j = int(key)
            if j <= i:
                continue
            (genuine if items[j][0] == eye else impostor).append(distance)
    return np.array(genuine), np.array(impostor)


def budget_report(run: RealRun, genuine: np.ndarray) -> None:
    """Impostor capture pairs at one alignment and at the best shift, for ADR 0141's fit."""
    from bench.iris_budget import report

    eye_names = sorted(run.good)
    items = [(k, t) for k, eye in enumerate(eye_names) for t in run.good[eye]]
    single_gallery, best_gallery = IrisGallery(max_shift=0), IrisGallery()
    for gallery in (single_gallery, best_gallery):
        gallery.add_many((f"{i}", t) for i, (_, t) in enumerate(items))
    single, best, pairs = [], [], []
    for i, (eye, probe) in enumerate(items):
        one = single_gallery.distances(probe)
        for key, distance in best_gallery.distances(probe).items():
            j = int(key)
            if j > i and items[j][0] != eye:
                single.append(one[key])
                best.append(distance)
                pairs.append((eye, items[j][0]))
    report(np.array(single), np.array(best), np.array(pairs), len(eye_names), genuine,
           np.random.default_rng(20261130))


def d_prime(genuine: np.ndarray, impostor: np.ndarray) -> float:
    return float(abs(impostor.mean() - genuine.mean())
                 / np.sqrt((impostor.var() + genuine.var()) / 2))


def identification(run: RealRun) -> None:
    gallery = IrisGallery()
    gallery.add_many(run.enrolled.items())
    attempts = [(eye, probe, code) for eye, probe, code in run.probes if eye in run.enrolled]
    decisions: Counter = Counter()
    rank1 = right = wrong = searched = 0
    for eye, probe, code in attempts:
        if probe is None:
            decisions[f"refused ({code})"] += 1
            continue
        searched += 1
        match = gallery.search(probe)
        rank1 += match.subject_id == eye
        decisions[match.decision] += 1
        if match.decision == "match":
            right += match.subject_id == eye
            wrong += match.subject_id != eye
    print(f"\n1:N among {len(gallery)} enrolled eyes, {len(attempts)} later captures of "
          f"enrolled eyes ({searched} passed the gates):")
    print(f"  decisions: {_counts(decisions)}")
    print(f"  rank-1: {rank1}/{searched}; right door opened: {right}/{len(attempts)} = "
          f"{right / max(len(attempts), 1):.1%} of later captures ({right}/{searched} of "
          f"those searched); wrong resident opened: {wrong}")
    unenrolled = [(eye, p) for eye, p, _ in run.probes if eye not in run.enrolled and p]
    strangers = [gallery.search(p).decision for _, p in unenrolled]
    print(f"  captures of eyes that did not enrol, searched as strangers: "
          f"{_counts(Counter(strangers))}")
    print(f"  thresholds: match < {MATCH_THRESHOLD}, near miss < {NEAR_MISS_THRESHOLD}")


def _counts(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=str)) or "none"


__all__ = ["run_dataset", "hamming_distance"]
