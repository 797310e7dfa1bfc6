"""Stage 5: base against tuned, on held-out ideas, judged blind in both orders."""

from __future__ import annotations

import gc
import logging
import random
import time

from tqdm import tqdm

from .files import write_csv
from .generate import clean_title
from .prompts import is_compliant
from .providers.base import Judge, SamplingConfig
from .stats import (
    bootstrap_over_groups,
    distinct_n,
    length_controlled_win_rate,
    length_summary,
    wilson_interval,
    win_rate,
)

log = logging.getLogger(__name__)

COMPARISON_COLUMNS = ["idea", "sample", "base_title", "tuned_title", "verdict", "rationale"]


def sample_titles(
    model: str, ideas: list[str], k: int, sampling: SamplingConfig
) -> list[list[str]]:
    """k cleaned titles per idea from one model; the caller gives both models the same seed."""
    from .providers.hf import HFGenerator

    gen = HFGenerator(model)
    with tqdm(
        total=len(ideas), desc=f"sample {model.rstrip('/').split('/')[-1]}", unit="idea"
    ) as bar:
        answers = gen.generate(ideas, k, sampling, progress=bar)
    del gen
    gc.collect()
    return [[clean_title(a.text) for a in per_idea] for per_idea in answers]


def judge_blind(
    ideas: list[str], base: list[list[str]], tuned: list[list[str]], judge: Judge, seed: int
) -> tuple[list[dict], int]:
    """Compare base and tuned sample by sample. The judge sees "A" and "B" only, in both
    orders; a side wins only if it wins both times. Returns comparison rows and position flips."""
    rng = random.Random(seed)
    slots = []
    for idea, bs, ts in zip(ideas, base, tuned, strict=True):
        for j, (b, t) in enumerate(zip(bs, ts, strict=True)):
            tuned_first = rng.random() < 0.5
            slots.append((idea, j, b, t, tuned_first))
    first_order = [(i, t, b) if tf else (i, b, t) for i, _, b, t, tf in slots]
    second_order = [(i, b, t) if tf else (i, t, b) for i, _, b, t, tf in slots]
    v1 = judge.compare_many(first_order)
    v2 = judge.compare_many(second_order)
    rows, flips = [], 0
    for (idea, j, b, t, tf), a1, a2 in zip(slots, v1, v2, strict=True):
        # Map each verdict back from letters to models.
        w1 = {"A": "tuned" if tf else "base", "B": "base" if tf else "tuned"}.get(a1.winner, "tie")
        w2 = {"A": "base" if tf else "tuned", "B": "tuned" if tf else "base"}.get(a2.winner, "tie")
        if "error" in (a1.winner, a2.winner):
            verdict = "failed"  # the judge never gave a usable answer; counted, not guessed
        elif w1 == w2:
            verdict = w1
        else:
            verdict = "tie"
            if "tie" not in (w1, w2):
                flips += 1
        rows.append(
            {
                "idea": idea,
                "sample": j,
                "base_title": b,
                "tuned_title": t,
                "verdict": verdict,
                "rationale": a1.rationale,
            }
        )
    return rows, flips


# Length difference (tuned minus base, characters) that counts as "about the same length".
SAME_LENGTH = 10
LENGTH_BINS = ("tuned shorter", "about the same", "tuned longer")


def _length_bin(row: dict) -> str:
    diff = len(row["tuned_title"]) - len(row["base_title"])
    return LENGTH_BINS[0] if diff < -SAME_LENGTH else LENGTH_BINS[2 if diff > SAME_LENGTH else 1]


def length_effect(rows: list[dict]) -> dict:
    """How much of the win is length (judges favour length): the win rate within bins of the
    length difference, and AlpacaEval's length-controlled win rate."""
    by_bin = {b: [r["verdict"] for r in rows if _length_bin(r) == b] for b in LENGTH_BINS}
    score = {"tuned": 1.0, "tie": 0.5, "base": 0.0}
    lc = length_controlled_win_rate(
        [score[r["verdict"]] for r in rows],
        [len(r["tuned_title"]) - len(r["base_title"]) for r in rows],
    )
    return {
        "win_rate_length_controlled": None if lc is None else round(lc, 4),
        "win_rate_by_length": [
            {
                "bin": b,
                "n": len(v),
                "win_rate": None if not v else round(win_rate(v), 4),
            }
            for b, v in by_bin.items()
        ],
    }


def base_model_note(model_dir) -> str:
    """One line saying that the base model is the tiny offline model, when it is (so nobody
    takes its titles for the cluster default's); empty otherwise."""
    import json
    from pathlib import Path

    from .tiny_model import INFO_FILE

    info_path = Path(model_dir) / INFO_FILE
    if not info_path.is_file():
        return ""
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = {}
    size = info.get("parameters")
    shown = f"{size / 1e6:.1f}M-parameter " if isinstance(size, int | float) else ""
    return (
        f"The base model is the tiny offline model (a {shown}model built by `make tiny-model` "
        f"from {info.get('corpus', 'the bundled corpus')}): a demonstration that runs anywhere, "
        "not the cluster default Qwen/Qwen2.5-0.5B-Instruct."
    )


def summarise(rows: list[dict], flips: int) -> dict:
    failed = sum(r["verdict"] == "failed" for r in rows)
    rows = [r for r in rows if r["verdict"] != "failed"]
    n = len(rows)
    wins = sum(r["verdict"] == "tuned" for r in rows)
    losses = sum(r["verdict"] == "base" for r in rows)
    ties = n - wins - losses
    rate = win_rate([r["verdict"] for r in rows]) or 0.0
    low, high = wilson_interval(rate, n)
    # The samples of one idea are not independent: an interval over ideas is the honest one.
    by_idea: dict[str, list[str]] = {}
    for r in rows:
        by_idea.setdefault(r.get("idea", ""), []).append(r["verdict"])
    over_ideas = bootstrap_over_groups(by_idea, win_rate)
    base = [r["base_title"] for r in rows]
    tuned = [r["tuned_title"] for r in rows]
    mean_b, med_b = length_summary(base)
    mean_t, med_t = length_summary(tuned)
    return {
        "win_rate": round(rate, 4),
        "win_rate_ci_low": round(low, 4),
        "win_rate_ci_high": round(high, 4),
        "win_rate_ideas_ci_low": None if over_ideas is None else round(over_ideas[0], 4),
        "win_rate_ideas_ci_high": None if over_ideas is None else round(over_ideas[1], 4),
        **length_effect(rows),
        "wins": wins,
        "ties": ties,
        "losses": losses,
        "n_comparisons": n,
        "compliance_base": round(sum(map(is_compliant, base)) / n, 4) if n else 0.0,
        "compliance_tuned": round(sum(map(is_compliant, tuned)) / n, 4) if n else 0.0,
        "mean_len_base": mean_b,
        "mean_len_tuned": mean_t,
        "median_len_base": med_b,
        "median_len_tuned": med_t,
        "distinct2_base": round(distinct_n(base, 2), 4),
        "distinct2_tuned": round(distinct_n(tuned, 2), 4),
        "position_flip_rate": round(flips / n, 4) if n else 0.0,
        "eval_failures": failed,
    }


def compare_models(
    base_model: str,
    tuned_model: str,
    ideas: list[str],
    judge: Judge,
    k: int = 4,
    sampling: SamplingConfig | None = None,
) -> tuple[list[dict], dict]:
    """Sample k titles per held-out idea from each model with identical settings and seeds,
    then judge them blind. Returns comparison rows and metrics."""
    sampling = sampling or SamplingConfig()
    began = time.perf_counter()
    base = sample_titles(base_model, ideas, k, sampling)
    tuned = sample_titles(tuned_model, ideas, k, sampling)
    rows, flips = judge_blind(ideas, base, tuned, judge, seed=sampling.seed)
    metrics = summarise(rows, flips)
    metrics.update(
        {
            "eval_ideas": len(ideas),
            "samples_per_idea": k,
            "eval_judge": judge.name,
            "eval_temperature": sampling.temperature,
            "eval_top_p": sampling.top_p,
            "eval_seed": sampling.seed,
            "eval_seconds": round(time.perf_counter() - began, 1),
        }
    )
    log.info(
        "evaluation: tuned wins %d, ties %d, loses %d of %d (win rate %.3f, 95%% CI %.3f-%.3f)",
        metrics["wins"],
        metrics["ties"],
        metrics["losses"],
        metrics["n_comparisons"],
        metrics["win_rate"],
        metrics["win_rate_ci_low"],
        metrics["win_rate_ci_high"],
    )
    return rows, metrics


def held_out_ideas(split: dict, extra: list[str], extra_name: str = "") -> tuple[list[str], str]:
    """The ideas to evaluate on: the split's validation ideas, then `extra` ideas (from an
    evaluation ideas file called `extra_name`), never an idea that was trained on. Returns the
    ideas and a description of where they came from."""
    ideas = list(split["validation_ideas"])
    source = f"{len(ideas)} validation ideas of the split"
    if extra_name:
        trained = set(split.get("train_ideas", []))
        overlap = [i for i in extra if i in trained]
        if overlap:
            log.warning(
                "%d ideas of %s were trained on and are left out of the evaluation",
                len(overlap),
                extra_name,
            )
        seen = set(ideas)
        added = [i for i in extra if i not in trained and not (i in seen or seen.add(i))]
        ideas += added
        source += f" + {len(added)} from {extra_name}"
    return ideas, source


def same_judge_warning(judge_name: str, label_judges: list[str]) -> str | None:
    """The warning when the evaluation judge also labelled the training pairs."""
    if judge_name not in label_judges:
        return None
    return (
        f"the evaluation judge's back end ({judge_name}) also labelled the training pairs: the "
        "tuned model was trained to please this judge, so the win rate overstates what a "
        "different reader would see; choose another eval_judge for an independent verdict"
    )


def read_comparisons(path) -> list[dict]:
    """The comparisons CSV of an evaluation, each row's sample a number."""
    from .errors import UserError
    from .files import read_csv

    rows = read_csv(path, ["idea", "base_title", "tuned_title"], "comparisons")
    for number, row in enumerate(rows, start=2):
        try:
            row["sample"] = int(row.get("sample") or 0)
        except ValueError:
            raise UserError(f"{path} row {number}: sample is not a number") from None
    return rows


def write_comparisons(rows: list[dict], path) -> None:
    """The comparisons CSV behind the win rate (written inside the evaluation folder)."""
    write_csv(path, rows, COMPARISON_COLUMNS)
