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


def bootstrap_over_groups(
    groups: dict, statistic, *, rounds: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float] | None:
    """A percentile interval of `statistic(items)` over groups drawn with replacement (ideas:
    the items of one group are not independent); None with fewer than two groups or when the
    statistic is undefined on most draws."""
    import random

    keys = sorted(groups)
    if len(keys) < 2:
        return None
    rng = random.Random(seed)
    values = []
    for _ in range(rounds):
        value = statistic([item for _ in keys for item in groups[rng.choice(keys)]])
        if value is not None:
            values.append(value)
    if len(values) < rounds // 2:
        return None
    values.sort()
    tail = (1 - level) / 2
    return values[int(tail * (len(values) - 1))], values[int((1 - tail) * (len(values) - 1))]


def win_rate(verdicts: list[str]) -> float | None:
    """The tuned model's share of `verdicts` ("tuned", "base", "tie"), ties counting half."""
    if not verdicts:
        return None
    return (verdicts.count("tuned") + 0.5 * verdicts.count("tie")) / len(verdicts)


def length_controlled_win_rate(outcomes: list[float], length_diffs: list[float]) -> float | None:
    """The win rate with the length difference held at zero, as AlpacaEval's length-controlled
    win rate: a logistic fit of the outcome (1 win, 0.5 tie, 0 loss) on tanh(diff / sd of diff),
    read at a difference of zero. None when there is too little to fit."""
    n = len(outcomes)
    if n < 10:
        return None
    mean = sum(length_diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in length_diffs) / n)
    x = [math.tanh(d / sd) if sd > 0 else 0.0 for d in length_diffs]
    a = b = 0.0
    # Newton's method on the two parameters, with a small ridge so that a perfect separation
    # (every longer title wins) gives a finite fit instead of a runaway slope.
    ridge = 0.1
    for _ in range(100):
        ga, gb = -ridge * a, -ridge * b
        haa, hab, hbb = ridge, 0.0, ridge
        for y, xi in zip(outcomes, x, strict=True):
            p = 1 / (1 + math.exp(-(a + b * xi)))
            w = p * (1 - p)
            ga += y - p
            gb += (y - p) * xi
            haa += w
            hab += w * xi
            hbb += w * xi * xi
        det = haa * hbb - hab * hab
        if det <= 0:
            return None
        da = (hbb * ga - hab * gb) / det
        db = (haa * gb - hab * ga) / det
        a, b = a + da, b + db
        if abs(da) + abs(db) < 1e-9:
            break
    return 1 / (1 + math.exp(-a))
