"""Recording a stage's figures as KFP Metrics."""

from __future__ import annotations

import math


def numeric_items(stats: dict) -> dict[str, float]:
    """The finite numbers of a stats dict; KFP Metrics take numbers only."""
    out = {}
    for key, value in stats.items():
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int | float) and math.isfinite(value):
            # KFP metric names may not contain "/" in every UI; keep them readable.
            out[key.replace("/", "_")] = float(value)
    return out


def log_metrics(metrics, stats: dict) -> None:
    for key, value in numeric_items(stats).items():
        metrics.log_metric(key, value)
