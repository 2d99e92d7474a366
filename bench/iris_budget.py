"""The match threshold from an error budget (ADR 0141), on impostor scores of real eyes.

Daugman's model: the fraction of disagreeing bits between two unrelated IrisCodes at one
alignment is binomial with N effective degrees of freedom (bits are correlated, so N is
far below the bit count) and mean p; a comparison keeps the best of K alignments, so its
score's CDF is 1 - (1 - B(x))^K. p comes from the one-alignment scores; N (lowered from the
one-alignment spread until the model's tail is as heavy as the observed one) and K_eff from
the best-of-all-shifts scores' 1st and 0.1th percentiles; the fit is checked against the observed tail. The
uncertainty is a bootstrap over eyes (pairs of one eye are not independent)."""
from __future__ import annotations

import math

import numpy as np

BUDGET_PER_SEARCH = 1e-6  # a false match in one 1:N search
ENROLLED = 2_000  # residents a station holds
NEAR_MISS_PER_SEARCH = 1e-3  # a stranger told "we are not sure it is you", per search
BOOTSTRAP = 200


def binomial_cdf(x: float, n: float, p: float) -> float:
    """P(fraction <= x) for a binomial with (possibly fractional) n trials."""
    k_max = math.floor(x * n)
    if k_max < 0:
        return 0.0
    logs = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log1p(-p) for k in range(k_max + 1)]
    top = max(logs)
    return min(math.exp(top) * sum(math.exp(v - top) for v in logs), 1.0)


def best_of(x: float, n: float, p: float, k: float) -> float:
    single = binomial_cdf(x, n, p)
    return -math.expm1(k * math.log1p(-single)) if single < 1 else 1.0


def fit(single: np.ndarray, best: np.ndarray, weights_single: np.ndarray | None = None,
        weights_best: np.ndarray | None = None) -> tuple[float, float, float]:
    """(N, p, K_eff) from one-alignment and best-of-shifts impostor scores."""
    p = float(np.average(single, weights=weights_single))
    var = float(np.average((single - p) ** 2, weights=weights_single))
    n = p * (1 - p) / var
    # K_eff from the tail, not the mean: the fraction of best-of-shift scores below their
    # 1st percentile must come out of the model too (a mean fit under-states the tail).
    # Then N is lowered (a wider binomial) until the model also reaches the observed
    # fraction at the 0.1th percentile: real tails are heavier than the binomial's.
    order = np.argsort(best)
    cumulative = np.cumsum(weights_best[order] if weights_best is not None
                           else np.ones(len(best)))
    cut1, cut01 = (float(best[order][np.searchsorted(cumulative, q * cumulative[-1])])
                   for q in (0.01, 0.001))
    while True:
        k = _k_for(cut1, 0.01, n, p)
        if best_of(cut01, n, p, k) >= 0.001 or n < 20:
            return n, p, k
        n *= 0.97


def _k_for(cut: float, observed: float, n: float, p: float) -> float:
    lo, hi = 1.0, 256.0
    for _ in range(30):
        k = math.sqrt(lo * hi)
        lo, hi = (k, hi) if best_of(cut, n, p, k) < observed else (lo, k)
    return math.sqrt(lo * hi)


def per_search(threshold: float, model: tuple[float, float, float], enrolled: int) -> float:
    per_comparison = best_of(threshold, *model)
    return -math.expm1(enrolled * math.log1p(-per_comparison))


def threshold_for(budget: float, model: tuple[float, float, float], enrolled: int) -> float:
    grid = np.arange(0.20, 0.46, 0.0025)
    allowed = [t for t in grid if per_search(float(t), model, enrolled) < budget]
    return float(max(allowed)) if allowed else 0.0


def report(single: np.ndarray, best: np.ndarray, pair_eyes: np.ndarray, eyes: int,
           genuine: np.ndarray, rng: np.random.Generator) -> None:
    """single/best: impostor scores per pair of captures; pair_eyes: (pairs, 2) eye
    indices of each pair, for the bootstrap over eyes."""
    model = fit(single, best)
    print(f"\nimpostor model (ADR 0141): one alignment mean p={model[1]:.4f}, N={model[0]:.0f} "
          f"degrees of freedom; best of K_eff={model[2]:.1f} alignments")
    for x in (0.36, 0.38, 0.40, 0.42):
        print(f"  below {x:.2f}: observed {int((best < x).sum())}, model "
              f"{best_of(x, *model) * len(best):.1f} of {len(best)}")
    thresholds, near = [], []
    for _ in range(BOOTSTRAP):
        draw = np.bincount(rng.integers(0, eyes, eyes), minlength=eyes).astype(float)
        weights = draw[pair_eyes[:, 0]] * draw[pair_eyes[:, 1]]
        if weights.sum() == 0:
            continue
        boot = fit(single, best, weights, weights)
        thresholds.append(threshold_for(BUDGET_PER_SEARCH, boot, ENROLLED))
        near.append(threshold_for(NEAR_MISS_PER_SEARCH, boot, ENROLLED))
    point = threshold_for(BUDGET_PER_SEARCH, model, ENROLLED)
    safe = float(np.percentile(thresholds, 5))
    print(f"  budget: false match < {BUDGET_PER_SEARCH:g} per search over {ENROLLED} enrolled "
          f"(< {BUDGET_PER_SEARCH / ENROLLED:.1e} per comparison)")
    print(f"  threshold meeting it: {point:.4f} at the fit; bootstrap over eyes "
          f"p5 {safe:.4f} median {np.median(thresholds):.4f} p95 "
          f"{np.percentile(thresholds, 95):.4f} ({len(thresholds)} resamples)")
    for t in sorted({round(safe, 4), 0.30, 0.32, 0.34}):
        print(f"    at {t:.4f}: per-search false match {per_search(t, model, ENROLLED):.1e}, "
              f"genuine refused (probe vs template) {(genuine >= t).mean():.1%}")
    near_point = float(np.percentile(near, 5))
    print(f"  near-miss bound where a stranger lands in the band < {NEAR_MISS_PER_SEARCH:g} "
          f"per search: {near_point:.4f} (bootstrap p5)")
