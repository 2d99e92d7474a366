"""Handwritten characters as stroke lists on a 300x300 pad: each stroke a pen path through
corner points, sampled as a finger would draw it (shared by the recogniser and browser tests)."""
from __future__ import annotations

PAD = 300


def pen(*corners: tuple[int, int], steps: int = 8) -> list[tuple[int, int]]:
    """A stroke through `corners`, with `steps` points on each straight part."""
    points = [corners[0]]
    for (x0, y0), (x1, y1) in zip(corners, corners[1:]):
        points += [(round(x0 + (x1 - x0) * i / steps), round(y0 + (y1 - y0) * i / steps))
                   for i in range(1, steps + 1)]
    return points


CHARACTERS = {
    "上": [pen((150, 40), (150, 250)), pen((150, 140), (240, 140)), pen((40, 250), (260, 250))],
    "工": [pen((60, 60), (240, 60)), pen((150, 60), (150, 240)), pen((40, 240), (260, 240))],
    "中": [pen((60, 90), (60, 200)), pen((60, 90), (240, 90), (240, 200)), pen((60, 200), (240, 200)),
          pen((150, 30), (150, 280))],
    "电": [pen((70, 80), (70, 210)), pen((70, 80), (230, 80), (230, 210)), pen((70, 145), (230, 145)),
          pen((70, 210), (230, 210)), pen((150, 30), (150, 250), (170, 270), (260, 270), (260, 240))],
}
