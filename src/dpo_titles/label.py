"""Stage 2: turn candidate titles into preference pairs with a judge.

Every pair of an idea's candidates is judged twice, once in each order. Only a verdict that
survives the swap becomes a preference (MT-Bench's rule against position bias); ties and flips are
dropped and counted, never guessed.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import defaultdict

from tqdm import tqdm

from .files import write_csv
from .providers.base import Judge

log = logging.getLogger(__name__)

PREFERENCE_COLUMNS = ["idea", "chosen", "rejected", "judge", "agreement", "rationale"]


def candidate_pairs(candidates: list[dict]) -> list[tuple[str, str, str]]:
    """All unordered pairs of distinct titles within each idea, in a stable order."""
    by_idea: dict[str, list[str]] = defaultdict(list)
    for row in candidates:
        titles = by_idea[row["idea"]]
        if row["title"] and row["title"] not in titles:
            titles.append(row["title"])
    return [
        (idea, a, b)
        for idea, titles in by_idea.items()
        for a, b in itertools.combinations(titles, 2)
    ]


def label_pairs(candidates: list[dict], judge: Judge, batch: int = 256) -> tuple[list[dict], dict]:
    """Judge all pairs in both orders; return preference rows and statistics."""
    began = time.perf_counter()
    pairs = candidate_pairs(candidates)
    preferences: list[dict] = []
    ties = flips = 0
    with tqdm(total=len(pairs), desc="label", unit="pair") as bar:
        for start in range(0, len(pairs), batch):
            chunk = pairs[start : start + batch]
            forward = judge.compare_many(chunk)
            backward = judge.compare_many([(i, b, a) for i, a, b in chunk])
            for (idea, a, b), v1, v2 in zip(chunk, forward, backward, strict=True):
                # In the swapped call "A" is title b, so an agreeing judge answers the mirror.
                first = {"A": a, "B": b}.get(v1.winner)
                second = {"A": b, "B": a}.get(v2.winner)
                if first is None and second is None:
                    ties += 1
                elif first != second:
                    flips += 1
                else:
                    loser = b if first == a else a
                    preferences.append(
                        {
                            "idea": idea,
                            "chosen": first,
                            "rejected": loser,
                            "judge": judge.name,
                            "agreement": 1.0,
                            "rationale": v1.rationale,
                        }
                    )
            bar.update(len(chunk))
    stats = {
        "pairs": len(pairs),
        "judge_calls": 2 * len(pairs),
        "preferences": len(preferences),
        "ties": ties,
        "position_flips": flips,
        "calls_per_preference": round(2 * len(pairs) / len(preferences), 3)
        if preferences
        else None,
        "seconds": round(time.perf_counter() - began, 2),
    }
    log.info(
        "labelled %d of %d pairs (%d ties, %d position flips)",
        len(preferences),
        len(pairs),
        ties,
        flips,
    )
    return preferences, stats


def write_preferences(rows: list[dict], path) -> None:
    write_csv(path, rows, PREFERENCE_COLUMNS)
