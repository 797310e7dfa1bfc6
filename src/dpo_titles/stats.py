"""Small statistics for honest evaluation figures."""

from __future__ import annotations

import math
import statistics

# The two-sided 95% normal quantile.
Z95 = 1.959963984540054


def wilson_interval(p_hat: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion; (0, 1) when there is no data."""
    if n <= 0:
        return 0.0, 1.0
    denom = 1 + z * z / n
    centre = (p_hat + z * z / (2 * n)) / denom
    half = z * math.sqrt(p_hat * (1 - p_hat) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def distinct_n(texts: list[str], n: int = 2) -> float:
    """Share of distinct word n-grams among all n-grams: 1.0 means no n-gram repeats."""
    grams = []
    for t in texts:
        words = t.lower().split()
        grams.extend(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    return len(set(grams)) / len(grams) if grams else 0.0


def length_summary(texts: list[str]) -> tuple[float, float]:
    lengths = [len(t) for t in texts]
    if not lengths:
        return 0.0, 0.0
    return round(statistics.fmean(lengths), 2), float(statistics.median(lengths))
