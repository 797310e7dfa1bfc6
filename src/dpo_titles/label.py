"""Stage 2: turn candidate titles into preference pairs with a judge, with position bias under
control.

LLM judges favour whichever answer they see first. Two modes, both asking twice:

- `pairwise`: every pair of an idea's titles is judged in both orders; only a verdict that
  survives the swap becomes a preference (MT-Bench's rule). One call per order per pair.
- `listwise`: all of an idea's titles are ranked in one call, twice, in two different shuffles;
  the pairs on which both rankings agree become preferences. At 5 titles that is up to 10 pairs
  from 2 calls instead of 20.

Ties, disagreements (position flips) and failed calls are dropped and counted, never guessed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import random
import time
from collections import defaultdict
from pathlib import Path

from .files import write_csv
from .outputs import atomic_file, remove_output
from .providers.base import Judge
from .rubric import TIE_MARGIN

log = logging.getLogger(__name__)

PREFERENCE_COLUMNS = ["idea", "chosen", "rejected", "judge", "agreement", "rationale"]
MODES = ("pairwise", "listwise")


def titles_by_idea(candidates: list[dict]) -> dict[str, list[str]]:
    by_idea: dict[str, list[str]] = defaultdict(list)
    for row in candidates:
        titles = by_idea[row["idea"]]
        if row["title"] and row["title"] not in titles:
            titles.append(row["title"])
    return dict(by_idea)


def candidate_pairs(candidates: list[dict]) -> list[tuple[str, str, str]]:
    """All unordered pairs of distinct titles within each idea, in a stable order."""
    return [
        (idea, a, b)
        for idea, titles in titles_by_idea(candidates).items()
        for a, b in itertools.combinations(titles, 2)
    ]


# What the judge made of a pair (idea, a, b) when asked twice: a or b won both times, both times
# a tie, a position flip (the verdict followed the position), or a failed call.
OUTCOMES = ("a", "b", "tie", "flip", "failed")


def _pairwise(pairs, judge) -> tuple[list[tuple[str, str]], int]:
    forward = [(i, a, b) for i, a, b in pairs]
    backward = [(i, b, a) for i, a, b in pairs]
    # One batch, so an API judge keeps all its connections busy.
    verdicts = judge.compare_many(forward + backward)
    v1s, v2s = verdicts[: len(pairs)], verdicts[len(pairs) :]
    outcomes = []
    for (_, a, b), v1, v2 in zip(pairs, v1s, v2s, strict=True):
        if "error" in (v1.winner, v2.winner):
            outcomes.append(("failed", ""))
            continue
        # In the swapped call "A" is title b, so a consistent judge answers the mirror.
        first = {"A": a, "B": b}.get(v1.winner)
        second = {"A": b, "B": a}.get(v2.winner)
        if first is None and second is None:
            outcomes.append(("tie", v1.rationale))
        elif first != second:
            outcomes.append(("flip", v1.rationale))
        else:
            outcomes.append(("a" if first == a else "b", v1.rationale))
    return outcomes, 2 * len(pairs)


def _shuffled(titles: list[str], idea: str, round_: int) -> list[int]:
    seed = int(hashlib.sha256(f"{idea}\0{round_}".encode()).hexdigest()[:12], 16)
    order = list(range(len(titles)))
    random.Random(seed).shuffle(order)
    if round_ == 1 and len(order) > 1:
        # Reverse the first shuffle, so each title sits in a different position both times.
        order = list(reversed(_shuffled(titles, idea, 0)))
    return order


def _listwise(by_idea: dict[str, list[str]], judge) -> tuple[dict, int]:
    """Outcomes keyed by (idea, a, b), a before b in the idea's own order of titles."""
    ideas = [i for i, ts in by_idea.items() if len(ts) >= 2]
    requests, shown = [], []
    for round_ in (0, 1):
        for idea in ideas:
            order = _shuffled(by_idea[idea], idea, round_)
            shown.append(order)
            requests.append((idea, [by_idea[idea][k] for k in order]))
    rankings = judge.rank_many(requests)
    half = len(ideas)
    outcomes = {}
    for n, idea in enumerate(ideas):
        titles = by_idea[idea]
        r1, r2 = rankings[n], rankings[half + n]
        combos = list(itertools.combinations(range(len(titles)), 2))
        if r1 is None or r2 is None:
            outcomes.update({(idea, titles[a], titles[b]): ("failed", "") for a, b in combos})
            continue
        # Map each ranking back from shown positions to the idea's own title indices.
        pos1 = {shown[n][k]: p for p, k in enumerate(r1.order)}
        pos2 = {shown[half + n][k]: p for p, k in enumerate(r2.order)}
        score = None
        if r1.scores is not None:
            score = {shown[n][k]: s for k, s in enumerate(r1.scores)}
        for a, b in combos:
            if score is not None and abs(score[a] - score[b]) < TIE_MARGIN:
                outcome = "tie"
            elif (pos1[a] < pos1[b]) != (pos2[a] < pos2[b]):
                outcome = "flip"
            else:
                outcome = "a" if pos1[a] < pos1[b] else "b"
            outcomes[(idea, titles[a], titles[b])] = (outcome, r1.rationale)
    return outcomes, len(requests)


_MIRROR = {"a": "b", "b": "a"}


def judge_pairs(
    pairs: list[tuple[str, str, str]], judge: Judge, mode: str = "pairwise"
) -> tuple[list[tuple[str, str]], int]:
    """The judge's outcome (one of OUTCOMES) and rationale for each pair (idea, a, b), each
    asked twice as `mode` asks; and the number of calls made."""
    from .errors import UserError

    if mode not in MODES:
        raise UserError(f"unknown judge mode {mode!r}: choose pairwise or listwise")
    if mode == "pairwise":
        return _pairwise(pairs, judge)
    by_idea: dict[str, list[str]] = defaultdict(list)
    for idea, a, b in pairs:
        by_idea[idea].extend(t for t in (a, b) if t not in by_idea[idea])
    found, calls = _listwise(dict(by_idea), judge)
    outcomes = []
    for idea, a, b in pairs:
        if (idea, a, b) in found:
            outcomes.append(found[(idea, a, b)])
        else:
            outcome, rationale = found[(idea, b, a)]
            outcomes.append((_MIRROR.get(outcome, outcome), rationale))
    return outcomes, calls


def _pref(idea, chosen, rejected, judge, rationale) -> dict:
    return {
        "idea": idea,
        "chosen": chosen,
        "rejected": rejected,
        "judge": judge.name,
        "agreement": 1.0,
        "rationale": rationale,
    }


def label_pairs(
    candidates: list[dict], judge: Judge, mode: str = "pairwise"
) -> tuple[list[dict], dict]:
    """Label the candidates' pairs; return preference rows and statistics."""
    began = time.perf_counter()
    pairs = candidate_pairs(candidates)
    outcomes, calls = judge_pairs(pairs, judge, mode)
    prefs, counts = [], {"ties": 0, "position_flips": 0, "failures": 0}
    counted = {"tie": "ties", "flip": "position_flips", "failed": "failures"}
    for (idea, a, b), (outcome, rationale) in zip(pairs, outcomes, strict=True):
        if outcome in counted:
            counts[counted[outcome]] += 1
        else:
            chosen, rejected = (a, b) if outcome == "a" else (b, a)
            prefs.append(_pref(idea, chosen, rejected, judge, rationale))
    judged = len(pairs) - counts["failures"]
    stats = {
        "mode": mode,
        "pairs": len(pairs),
        "preferences": len(prefs),
        **counts,
        "judge_calls": calls,
        "calls_per_preference": round(calls / len(prefs), 4) if prefs else None,
        "position_flip_rate": round(counts["position_flips"] / judged, 4) if judged else 0.0,
        "seconds": round(time.perf_counter() - began, 2),
    }
    api = getattr(judge, "stats", None)
    if api is not None:
        stats.update({f"api_{k}": v for k, v in api.as_dict().items()})
    log.info(
        "labelled %d of %d pairs (%s; %d ties, %d position flips, %d failed) with %d calls",
        len(prefs),
        len(pairs),
        mode,
        counts["ties"],
        counts["position_flips"],
        counts["failures"],
        calls,
    )
    return prefs, stats


def why_no_preferences(stats: dict, causes: str) -> str:
    """Why a labelling made no preference pair: no pairs at all, or by kind of loss (failed
    calls with their causes, position flips, ties)."""
    if not stats["pairs"]:
        return "no preference pairs: no idea has two different titles to compare"
    parts = []
    if stats["failures"]:
        parts.append(f"{stats['failures']} failed ({causes}; see the failures file)")
    if stats["position_flips"]:
        parts.append(
            f"{stats['position_flips']} position flips (the judge preferred a position, not a "
            "title, when the order was swapped)"
        )
    if stats["ties"]:
        parts.append(f"{stats['ties']} ties")
    return f"no preference pairs: of {stats['pairs']} pairs, " + ", ".join(parts)


def write_preferences(rows: list[dict], path, *, force: bool = False) -> None:
    """The preferences CSV: one row per labelled pair."""
    write_csv(path, rows, PREFERENCE_COLUMNS, force=force)


def failures_path(path) -> Path:
    """Where a stage's failed calls go: beside its output, `<output>.failures.jsonl`."""
    return Path(f"{path}.failures.jsonl")


def write_failures(failures: list[dict], path) -> Path | None:
    """Every failed call, with its cause and reason, beside the stage's output (JSON lines). A
    failures file of an earlier run of ours is replaced, or removed when there are none now."""
    target = failures_path(path)
    remove_output(target)
    if not failures:
        return None
    with atomic_file(target, what="failures file") as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            for item in failures:
                fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    return target
