"""How far to trust the judge: its verdicts on pairs people labelled, against theirs.

The judge labels exactly the human-labelled pairs, each asked twice as the label stage asks
(`label.judge_pairs`), and the two are compared as Google's AutoSxS compares an autorater with
human raters: the share of pairs on which they agree and Cohen's kappa, here with a bootstrap
interval over ideas (pairs of one idea are not independent). Each side's answer is one of three:
the first title, the second, or "can't tell" (a person's can't-tell, or the judge's tie or
position flip: a judge whose verdict follows the position has not told the titles apart).

A human file lists the preferred title first. Left as it is, every human answer would be "the
first" and kappa would be degenerate, so the two titles of each pair are put in a seeded, balanced
random order first (exactly half of the pairs swapped), and only then are both sides read.
"""

from __future__ import annotations

import random
from collections import defaultdict

from .dataset import is_tie
from .label import judge_pairs
from .providers.base import Judge
from .stats import bootstrap_over_groups, win_rate

ANSWERS = ("first", "second", "can't tell")
BOOTSTRAP_ROUNDS = 1000


def human_pairs(rows: list[dict]) -> list[dict]:
    """Human rows (idea, chosen, rejected, optional verdict) as pairs with the person's answer:
    the preferred title, or none for a row whose verdict is `tie`."""
    pairs = []
    for row in rows:
        tie = is_tie(row)
        pairs.append(
            {
                "idea": row["idea"],
                "titles": (row["chosen"], row["rejected"]),
                "preferred": None if tie else row["chosen"],
            }
        )
    return pairs


def _balanced_order(n: int, seed: int) -> list[bool]:
    """Which of n pairs to swap: exactly n // 2 of them, chosen at random."""
    swapped = [i < n // 2 for i in range(n)]
    random.Random(seed).shuffle(swapped)
    return swapped


def cohens_kappa(first: list[str], second: list[str]) -> float | None:
    """Cohen's kappa of two raters' answers; None when chance agreement is total (one answer
    only on both sides), where kappa is undefined."""
    n = len(first)
    if n == 0:
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    expected = sum((first.count(c) / n) * (second.count(c) / n) for c in set(first) | set(second))
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def measure_agreement(
    rows: list[dict], judge: Judge, mode: str = "pairwise", seed: int = 0
) -> dict:
    """The judge against people on the human-labelled `rows`: pairs compared, agreement,
    Cohen's kappa with its bootstrap interval over ideas, the judge's position-flip rate, each
    side's can't-tell rate and the confusion table (human answer -> judge answer -> count)."""
    pairs = human_pairs(rows)
    swapped = _balanced_order(len(pairs), seed)
    shown = []
    for pair, swap in zip(pairs, swapped, strict=True):
        a, b = pair["titles"][::-1] if swap else pair["titles"]
        shown.append((pair["idea"], a, b))
    outcomes, calls = judge_pairs(shown, judge, mode)

    by_idea: dict[str, list[tuple[str, str]]] = defaultdict(list)
    confusion = {h: dict.fromkeys(ANSWERS, 0) for h in ANSWERS}
    failed = flips = 0
    for pair, (idea, a, _b), (outcome, _) in zip(pairs, shown, outcomes, strict=True):
        if outcome == "failed":
            failed += 1
            continue
        flips += outcome == "flip"
        human = ANSWERS[2] if pair["preferred"] is None else ANSWERS[pair["preferred"] != a]
        machine = {"a": ANSWERS[0], "b": ANSWERS[1]}.get(outcome, ANSWERS[2])
        confusion[human][machine] += 1
        by_idea[idea].append((human, machine))

    compared = [p for ps in by_idea.values() for p in ps]
    n = len(compared)
    kappa = cohens_kappa([h for h, _ in compared], [j for _, j in compared])
    interval = bootstrap_over_groups(
        by_idea,
        lambda drawn: cohens_kappa([h for h, _ in drawn], [j for _, j in drawn]),
        rounds=BOOTSTRAP_ROUNDS,
        seed=seed,
    )
    return {
        "judge": judge.name,
        "mode": mode,
        "pairs": len(pairs),
        "pairs_compared": n,
        "failed": failed,
        "ideas": len(by_idea),
        "agreement": round(sum(h == j for h, j in compared) / n, 4) if n else None,
        "kappa": None if kappa is None else round(kappa, 4),
        "kappa_ci": None if interval is None else [round(v, 4) for v in interval],
        "position_flip_rate": round(flips / n, 4) if n else None,
        "human_cant_tell_rate": round(sum(h == ANSWERS[2] for h, _ in compared) / n, 4)
        if n
        else None,
        "judge_cant_tell_rate": round(sum(j == ANSWERS[2] for _, j in compared) / n, 4)
        if n
        else None,
        "confusion": confusion,
        "judge_calls": calls,
        "seed": seed,
    }


def agreement_table(result: dict) -> str:
    """A short text table of `measure_agreement`'s figures, for a terminal."""
    kappa = result["kappa"]
    ci = result["kappa_ci"]
    lines = [
        f"judge {result['judge']} ({result['mode']}) against people on "
        f"{result['pairs_compared']} of {result['pairs']} pairs ({result['ideas']} ideas, "
        f"{result['failed']} failed)",
        f"agreement {_pct(result['agreement'])}   kappa "
        f"{'n/a' if kappa is None else f'{kappa:.3f}'}"
        + (f" (95% CI {ci[0]:.3f} to {ci[1]:.3f})" if ci else ""),
        f"position flips {_pct(result['position_flip_rate'])}   can't tell: people "
        f"{_pct(result['human_cant_tell_rate'])}, judge {_pct(result['judge_cant_tell_rate'])}",
        f"{'people / judge':>16} " + " ".join(f"{a:>11}" for a in ANSWERS),
    ]
    for human in ANSWERS:
        row = result["confusion"][human]
        lines.append(f"{human:>16} " + " ".join(f"{row[a]:>11}" for a in ANSWERS))
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def human_evaluation(comparisons: list[dict], human: list[dict]) -> dict:
    """People's blind verdicts on base-vs-tuned comparisons (`annotate --comparisons`) beside
    the judge's: the human win rate of the tuned model (ties count half) with its Wilson
    interval, the judge's on the same comparisons, and how often the two verdicts agree (with
    Cohen's kappa over tuned / base / tie)."""
    from .stats import wilson_interval

    def key(row: dict) -> tuple:
        return (row["idea"], str(row.get("sample", "")), row["base_title"], row["tuned_title"])

    judged = {key(c): c["verdict"] for c in comparisons if c.get("verdict") != "failed"}
    people = [
        (h["verdict"], judged.get(key(h)))
        for h in human
        if h.get("verdict") in ("tuned", "base", "tie")
    ]
    n = len(people)

    rate = win_rate([h for h, _ in people])
    both = [(h, j) for h, j in people if j is not None]
    kappa = cohens_kappa([h for h, _ in both], [j for _, j in both])
    return {
        "human_comparisons": n,
        "human_tuned": sum(h == "tuned" for h, _ in people),
        "human_base": sum(h == "base" for h, _ in people),
        "human_tie": sum(h == "tie" for h, _ in people),
        "human_win_rate": None if rate is None else round(rate, 4),
        "human_win_rate_ci": None
        if rate is None
        else [round(v, 4) for v in wilson_interval(rate, n)],
        "judge_win_rate_same": None if not both else round(win_rate([j for _, j in both]), 4),
        "matched": len(both),
        "human_judge_agreement": round(sum(h == j for h, j in both) / len(both), 4)
        if both
        else None,
        "human_judge_kappa": None if kappa is None else round(kappa, 4),
    }
