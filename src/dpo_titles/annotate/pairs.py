"""Which pairs a person is asked to label, and in which order and orientation.

Two sources: a candidates CSV (every pair of an idea's distinct titles, optionally only the pairs
a judge labelled in a preferences CSV) and the evaluate stage's comparisons CSV (base against
tuned title, one pair per row). A sample of `--pairs N` is spread over the ideas; which title is
shown on the left is random. Everything random comes from one seeded `random.Random`, so the
same inputs and seed ask the same pairs the same way after a restart.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import UserError
from ..files import read_csv
from ..label import candidate_pairs

log = logging.getLogger(__name__)

CANDIDATES = "candidates"
COMPARISONS = "comparisons"
MODES = (CANDIDATES, COMPARISONS)
BASE, TUNED = "base", "tuned"


@dataclass(frozen=True)
class Pair:
    """One question: an idea and two titles as shown. `left_role` and `sample` (comparisons
    only) say which model wrote the left title; they never reach the page."""

    id: str
    idea: str
    left: str
    right: str
    left_role: str = ""
    sample: str = ""

    def public(self) -> dict:
        """What the page may see: nothing that names a model or a judge."""
        return {"id": self.id, "idea": self.idea, "left": self.left, "right": self.right}


def pair_id(*parts: str) -> str:
    """A short stable id of a pair: 16 hex digits of the SHA-256 of its parts."""
    # JSON keeps the parts apart: no title can imitate a separator.
    text = json.dumps(list(parts), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def candidate_pair_id(idea: str, a: str, b: str) -> str:
    """The id of an unordered pair of an idea's titles (the same in either order)."""
    return pair_id(idea, *sorted((a, b)))


def comparison_pair_id(idea: str, sample: str, base: str, tuned: str) -> str:
    """The id of one comparison row: the sample counts, since a row is one draw."""
    return pair_id(idea, sample, base, tuned)


def spread(groups: dict[str, list], n: int | None, rng: random.Random) -> list:
    """Up to `n` items (all for None) taken round-robin over the shuffled groups, each group
    shuffled too: a sample that reaches every idea before it takes a second pair of one."""
    ideas = list(groups)
    rng.shuffle(ideas)
    queues = []
    for idea in ideas:
        items = list(groups[idea])
        rng.shuffle(items)
        queues.append(items)
    taken: list = []
    limit = sum(len(q) for q in queues) if n is None else n
    depth = 0
    while len(taken) < limit and any(depth < len(q) for q in queues):
        for items in queues:
            if depth < len(items) and len(taken) < limit:
                taken.append(items[depth])
        depth += 1
    return taken


def _grouped(items: Iterable[tuple]) -> dict[str, list[tuple]]:
    groups: dict[str, list[tuple]] = {}
    for item in items:
        groups.setdefault(item[0], []).append(item)
    return groups


def judged_pairs(path) -> set[str]:
    """The ids of the pairs a judge labelled, from a preferences CSV of `label`."""
    rows = read_csv(path, ["idea", "chosen", "rejected"], "preferences")
    return {candidate_pair_id(r["idea"], r["chosen"], r["rejected"]) for r in rows}


def from_candidates(path, *, pairs: int | None, seed: int, preferences=None) -> list[Pair]:
    """The pairs of a candidates CSV to ask, in order, each oriented at random."""
    rows = read_csv(path, ["idea", "title"], "candidates")
    found = [p for p in candidate_pairs(rows) if p[0].strip()]
    if preferences is not None:
        wanted = judged_pairs(preferences)
        found = [p for p in found if candidate_pair_id(*p) in wanted]
        missing = len(wanted) - len(found)
        if not found:
            raise UserError(
                f"no pair of the preferences file {preferences} is among the titles of "
                f"{path}: pass the candidates file the judge labelled"
            )
        if missing:
            log.warning("%d judged pair(s) are not among the candidates: left out", missing)
    if not found:
        raise UserError(
            f"candidates file {path} has no idea with two different titles: nothing to compare"
        )
    rng = random.Random(seed)
    chosen = spread(_grouped(found), pairs, rng)
    out = []
    for idea, a, b in chosen:
        left, right = (b, a) if rng.random() < 0.5 else (a, b)
        out.append(Pair(candidate_pair_id(idea, a, b), idea, left, right))
    return out


def from_comparisons(path, *, pairs: int | None, seed: int) -> list[Pair]:
    """The base-vs-tuned rows of a comparisons CSV to ask, in order, each oriented at random;
    rows whose two titles are equal or empty are left out (there is nothing to tell)."""
    rows = read_csv(path, ["idea", "sample", "base_title", "tuned_title"], "comparisons")
    found, seen = [], set()
    for row in rows:
        idea, sample = row["idea"], row["sample"] or ""
        base, tuned = row["base_title"] or "", row["tuned_title"] or ""
        key = comparison_pair_id(idea, sample, base, tuned)
        if not idea.strip() or not base.strip() or not tuned.strip() or base == tuned:
            continue
        if key not in seen:
            seen.add(key)
            found.append((idea, sample, base, tuned))
    if not found:
        raise UserError(
            f"comparisons file {path} has no row with two different titles: nothing to compare"
        )
    rng = random.Random(seed)
    chosen = spread(_grouped(found), pairs, rng)
    out = []
    for idea, sample, base, tuned in chosen:
        key = comparison_pair_id(idea, sample, base, tuned)
        if rng.random() < 0.5:
            out.append(Pair(key, idea, tuned, base, TUNED, sample))
        else:
            out.append(Pair(key, idea, base, tuned, BASE, sample))
    return out
