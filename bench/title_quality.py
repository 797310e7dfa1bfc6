"""Title quality: how many of a model's words are real words, and how often it reuses its idea.

Two ways to get titles, both measured with ``dpo_titles.title_quality`` and shown base beside
tuned:

1. sample (the default): ``--k`` titles per idea of ``--ideas-file`` from ``--base-model`` and, if
   given, ``--tuned-model``, exactly as the evaluation stage samples them (``sample_titles``: the
   same prompt, sampling settings and seed for both, cleaned titles); with both models, the rubric
   judge also compares them blind, in both orders, as the evaluation stage does;
2. ``--comparisons runs/latest/comparisons.csv``: the base_title and tuned_title columns of a
   run's evaluation and its verdicts; with ``--ideas-file``, its ideas are reported apart from the
   others (a run's validation ideas), so each set gets its own figures.

Per set of ideas and model: ``real_words`` (the share of the titles' words that the word list or
the idea has), ``reuse`` (the share of titles that reuse a content word of the idea),
``compliant`` (30-75 characters) and, with two models, the win rate with ties as half, its Wilson
95% interval and the ties. Run from the repository root:
``.venv/bin/python bench/title_quality.py --comparisons runs/latest/comparisons.csv
--ideas-file data/eval_ideas.csv``. The last line is ``key=value`` figures. The word list is
Debian's ``wamerican`` (``apt-get install -y wamerican``) unless ``--wordlist`` names another.
"""

from __future__ import annotations

import argparse
import collections
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # when the package is not installed in this venv

from dpo_titles.errors import UserError  # noqa: E402
from dpo_titles.prompts import is_compliant  # noqa: E402
from dpo_titles.stats import wilson_interval  # noqa: E402
from dpo_titles.title_quality import (  # noqa: E402
    DEFAULT_WORDLIST,
    load_wordlist,
    non_words,
    real_word_share,
    reuse_share,
)

DEFAULT_MODEL = ROOT / "models" / "tiny"
DEFAULT_IDEAS = ROOT / "data" / "eval_ideas.csv"


def figures(pairs: list[tuple[str, str]], known) -> dict:
    """Real-word share, idea reuse and compliance of (idea, title) pairs."""
    n = len(pairs)
    return {
        "titles": n,
        "real_words": real_word_share(pairs, known),
        "reuse": reuse_share(pairs),
        "compliant": sum(is_compliant(t) for _, t in pairs) / n if n else 0.0,
    }


def verdict_figures(verdicts: list[str]) -> dict:
    """Win rate (ties as half) with its Wilson 95% interval, over usable verdicts."""
    usable = [v for v in verdicts if v in ("tuned", "base", "tie")]
    n = len(usable)
    wins, ties = usable.count("tuned"), usable.count("tie")
    rate = (wins + 0.5 * ties) / n if n else 0.0
    low, high = wilson_interval(rate, n)
    return {"win_rate": rate, "ci_low": low, "ci_high": high, "ties": ties, "comparisons": n}


def from_comparisons(path: Path, ideas_file: Path | None) -> dict[str, list[dict]]:
    """A run's comparison rows, split into those of the ideas file and the others."""
    from dpo_titles.evaluate import read_comparisons
    from dpo_titles.ideas import load_ideas

    rows = read_comparisons(path)
    if ideas_file is None:
        return {"all": rows}
    listed = {i.text for i in load_ideas(ideas_file)}
    sets = {
        "validation": [r for r in rows if r["idea"] not in listed],
        ideas_file.stem: [r for r in rows if r["idea"] in listed],
    }
    return {name: found for name, found in sets.items() if found}


def from_models(args) -> dict[str, list[dict]]:
    """Titles sampled as the evaluation stage samples them; verdicts when both models are given."""
    from dpo_titles.evaluate import judge_blind, sample_titles
    from dpo_titles.ideas import load_ideas
    from dpo_titles.providers import SamplingConfig, make_judge

    ideas = [i.text for i in load_ideas(Path(args.ideas_file))]
    sampling = SamplingConfig(args.temperature, args.top_p, args.max_new_tokens, args.seed)
    base = sample_titles(args.base_model, ideas, args.k, sampling)
    if not args.tuned_model:
        rows = [
            {"idea": idea, "base_title": t}
            for idea, titles in zip(ideas, base, strict=True)
            for t in titles
        ]
        return {Path(args.ideas_file).stem: rows}
    tuned = sample_titles(args.tuned_model, ideas, args.k, sampling)
    rows, _ = judge_blind(ideas, base, tuned, make_judge("rubric"), seed=sampling.seed)
    return {Path(args.ideas_file).stem: rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base-model", default=str(DEFAULT_MODEL), help="default models/tiny")
    p.add_argument("--tuned-model", default="", help="a tuned model to set beside the base")
    p.add_argument(
        "--comparisons",
        default="",
        help="measure a run's comparisons.csv (base_title, tuned_title) instead of sampling",
    )
    p.add_argument(
        "--ideas-file",
        default=None,
        help="ideas CSV (column idea) to sample for (default data/eval_ideas.csv); with "
        "--comparisons, the ideas to report apart from the run's others",
    )
    p.add_argument("--k", type=int, default=4, help="titles per idea and model when sampling")
    p.add_argument("--temperature", type=float, default=0.9, help="sampling temperature")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling top-p")
    p.add_argument("--max-new-tokens", type=int, default=40, help="longest title, in tokens")
    p.add_argument("--seed", type=int, default=1234, help="sampling seed")
    p.add_argument("--wordlist", default=DEFAULT_WORDLIST, help="word list file, one a line")
    p.add_argument("--show", type=int, default=8, help="example titles and non-words to print")
    args = p.parse_args(argv)
    if args.k < 1:
        p.error("--k must be at least 1")

    try:
        known = load_wordlist(args.wordlist)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        if args.comparisons:
            sets = from_comparisons(
                Path(args.comparisons), Path(args.ideas_file) if args.ideas_file else None
            )
        else:
            args.ideas_file = args.ideas_file or str(DEFAULT_IDEAS)
            if not Path(args.base_model).is_dir() and args.base_model == str(DEFAULT_MODEL):
                raise UserError(
                    f"model folder {args.base_model} does not exist; build the tiny model with "
                    "`make tiny-model` (or pass --base-model)"
                )
            sets = from_models(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    out: dict[str, str] = {}
    fmt = "{:<14}{:<7}{:>8}{:>12}{:>8}{:>11}"
    print(fmt.format("ideas", "model", "titles", "real words", "reuse", "compliant"))
    for name, rows in sets.items():
        for model in ("base", "tuned"):
            column = f"{model}_title"
            if not rows or column not in rows[0]:
                continue
            pairs = [(r["idea"], r[column]) for r in rows]
            f = figures(pairs, known)
            print(
                fmt.format(
                    name,
                    model,
                    f["titles"],
                    f"{f['real_words']:.1%}",
                    f"{f['reuse']:.1%}",
                    f"{f['compliant']:.1%}",
                )
            )
            for key in ("real_words", "reuse", "compliant"):
                out[f"{name}_{model}_{key}"] = f"{f[key]:.4f}"
            out[f"{name}_titles"] = str(f["titles"])
            odd = collections.Counter(non_words(pairs, known)).most_common(args.show)
            if odd:
                shown = ", ".join(f"{w} ({c})" for w, c in odd)
                print(f"{'':<21}non-words, most frequent first: {shown}")
            for idea, title in pairs[:: max(1, len(pairs) // max(1, args.show))][: args.show]:
                print(f"{'':<21}{title!r}  <- {idea[:50]}")
        if rows and "verdict" in rows[0]:
            v = verdict_figures([r["verdict"] for r in rows])
            print(
                f"{name}: tuned win rate {v['win_rate']:.3f} (95% CI {v['ci_low']:.3f}-"
                f"{v['ci_high']:.3f}), {v['ties']} ties of {v['comparisons']} comparisons"
            )
            out[f"{name}_win_rate"] = f"{v['win_rate']:.4f}"
            out[f"{name}_win_ci_low"] = f"{v['ci_low']:.4f}"
            out[f"{name}_win_ci_high"] = f"{v['ci_high']:.4f}"
            out[f"{name}_ties"] = str(v["ties"])
            out[f"{name}_comparisons"] = str(v["comparisons"])
    print(" ".join(f"{k}={v}" for k, v in out.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
