"""Title sampling for the evaluation: one prompt at a time (the original project's loop) against
our batches.

Both ways run in one process on one loaded model, with the same prompt (the chat template over
``dpo_titles.prompts.prompt_messages``), the same sampling settings (the evaluation stage's
defaults: temperature 0.9, top-p 0.95, at most 40 new tokens), the same number of titles and the
same torch thread count:

1. ``sequential``: the original project's way, ``model.generate`` once per idea per sample, one
   prompt of one row each time;
2. ``batched``: ``HFGenerator.generate``, which the evaluation stage's ``sample_titles`` calls:
   prompts left-padded into batches of ``--batch-size`` rows (ideas x k), k samples per prompt
   from ``num_return_sequences``.

Model loading is outside both timings, and both get the same untimed warm-up first. By default
the two ways take turns, one batched call's worth of ideas at a time, so that a busy machine
slows both alike; each way's time is the sum over its turns. Run from the
repository root: ``.venv/bin/python bench/eval_generation.py``. The last line of the output is
``key=value`` figures; see ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # when the package is not installed in this venv

from dpo_titles.errors import UserError  # noqa: E402
from dpo_titles.generate import clean_title  # noqa: E402
from dpo_titles.ideas import load_ideas  # noqa: E402
from dpo_titles.prompts import is_compliant, prompt_messages  # noqa: E402
from dpo_titles.providers.base import SamplingConfig  # noqa: E402
from dpo_titles.providers.hf import DEFAULT_BATCH_SIZE  # noqa: E402

DEFAULT_MODEL = ROOT / "models" / "tiny"
DEFAULT_IDEAS = ROOT / "data" / "ideas.csv"


def pick_ideas(path: Path, count: int) -> list[str]:
    """``count`` ideas from the file, cycling through it when it holds fewer."""
    texts = [idea.text for idea in load_ideas(path)]
    return list(itertools.islice(itertools.cycle(texts), count))


def run_sequential(lm, tokenizer, ideas: list[str], k: int, sampling: SamplingConfig) -> list[str]:
    """The original project's loop: one ``generate`` call per idea per sample, batch of one."""
    import torch

    torch.manual_seed(sampling.seed)
    answers = []
    for idea in ideas:
        text = tokenizer.apply_chat_template(
            prompt_messages(idea), tokenize=False, add_generation_prompt=True
        )
        enc = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(lm.device)
        for _ in range(k):
            with torch.no_grad():
                ids = lm.generate(
                    **enc,
                    do_sample=sampling.temperature > 0,
                    temperature=sampling.temperature if sampling.temperature > 0 else None,
                    top_p=sampling.top_p if sampling.temperature > 0 else None,
                    max_new_tokens=sampling.max_new_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                )
            answers.append(
                tokenizer.decode(ids[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
            )
    return answers


def run_batched(generator, ideas: list[str], k: int, sampling: SamplingConfig) -> list[str]:
    """What the evaluation stage runs: ``HFGenerator.generate``, left-padded batches."""
    return [g.text for per_idea in generator.generate(ideas, k, sampling) for g in per_idea]


def describe(tokenizer, answers: list[str]) -> dict:
    """Comparable output figures for both ways: answer tokens, cleaned title length, compliance."""
    tokens = [len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers]
    titles = [clean_title(a) for a in answers]
    return {
        "titles": len(answers),
        "mean_answer_tokens": statistics.fmean(tokens) if tokens else 0.0,
        "mean_title_chars": statistics.fmean(len(t) for t in titles) if titles else 0.0,
        "compliant": sum(map(is_compliant, titles)) / len(titles) if titles else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--model", default=str(DEFAULT_MODEL), help="model folder or hub id (default models/tiny)"
    )
    p.add_argument("--ideas-file", default=str(DEFAULT_IDEAS), help="ideas CSV (column idea)")
    p.add_argument("--ideas", type=int, default=50, help="ideas to sample for (cycling the file)")
    p.add_argument("--k", type=int, default=4, help="titles per idea")
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help="rows per batched generate call (HFGenerator's batch_size; the stage's default)",
    )
    p.add_argument("--max-new-tokens", type=int, default=40, help="new tokens at most, both ways")
    p.add_argument("--temperature", type=float, default=0.9, help="sampling temperature")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling top-p")
    p.add_argument("--seed", type=int, default=1234, help="sampling seed")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads for both ways (0: keep torch's default)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="timed rounds; times and speedup are the medians over rounds",
    )
    p.add_argument(
        "--interleave",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="take turns block by block (one batched call's ideas a block), so that load from "
        "other processes falls on both ways alike (--no-interleave: each way runs whole)",
    )
    args = p.parse_args(argv)
    if args.ideas < 1 or args.k < 1 or args.repeats < 1 or args.batch_size < 1:
        p.error("--ideas, --k, --repeats and --batch-size must be at least 1")

    model = Path(args.model)
    if (os.path.sep in args.model or args.model == str(DEFAULT_MODEL)) and not model.is_dir():
        print(
            f"error: model folder {args.model} does not exist; build the tiny model with "
            "`make tiny-model` (or pass --model)",
            file=sys.stderr,
        )
        return 2

    logging.getLogger("transformers").setLevel(logging.ERROR)
    import torch
    from transformers.utils import logging as hf_logging

    from dpo_titles.providers.hf import HFGenerator

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    ideas = pick_ideas(Path(args.ideas_file), args.ideas)
    sampling = SamplingConfig(args.temperature, args.top_p, args.max_new_tokens, args.seed)
    try:
        generator = HFGenerator(args.model, batch_size=args.batch_size)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    lm, tokenizer = generator.lm, generator.tokenizer
    n_titles = len(ideas) * args.k

    # The same untimed warm-up for both: two ideas, k titles each.
    print("warm-up ...", file=sys.stderr, flush=True)
    run_sequential(lm, tokenizer, ideas[:2], args.k, sampling)
    run_batched(generator, ideas[:2], args.k, sampling)

    # HFGenerator puts batch_size // k ideas (at least one) into each generate call.
    ideas_per_call = max(1, args.batch_size // args.k)
    calls = {"sequential": n_titles, "batched": -(-len(ideas) // ideas_per_call)}
    blocks = (
        [ideas[i : i + ideas_per_call] for i in range(0, len(ideas), ideas_per_call)]
        if args.interleave
        else [ideas]
    )

    seq_times, bat_times = [], []
    seq_answers: list[str] = []
    bat_answers: list[str] = []
    for round_number in range(args.repeats):
        print(
            f"round {round_number + 1}/{args.repeats}: {n_titles} titles each way, "
            f"{len(blocks)} block(s) ...",
            file=sys.stderr,
            flush=True,
        )
        seq_answers, bat_answers = [], []
        seq_s = bat_s = 0.0
        for number, block in enumerate(blocks):
            # Take turns on who goes first, so neither way always runs right after the other.
            for way in ("sequential", "batched") if number % 2 == 0 else ("batched", "sequential"):
                began = time.perf_counter()
                if way == "sequential":
                    seq_answers += run_sequential(lm, tokenizer, block, args.k, sampling)
                    seq_s += time.perf_counter() - began
                else:
                    bat_answers += run_batched(generator, block, args.k, sampling)
                    bat_s += time.perf_counter() - began
        seq_times.append(seq_s)
        bat_times.append(bat_s)
    assert len(seq_answers) == len(bat_answers) == n_titles

    # Each round's two times come from the same minutes of machine time, so their ratio is what
    # a busy machine moves least; the median round counts.
    ratios = [s / b for s, b in zip(seq_times, bat_times, strict=True)]
    speedup = statistics.median(ratios)
    seq_s, bat_s = statistics.median(seq_times), statistics.median(bat_times)
    seq_out, bat_out = describe(tokenizer, seq_answers), describe(tokenizer, bat_answers)

    print()
    print(
        f"{len(ideas)} ideas x {args.k} titles = {n_titles} titles from {args.model} on "
        f"{lm.device}, {threads} torch threads; temperature {args.temperature:g}, top-p "
        f"{args.top_p:g}, at most {args.max_new_tokens} new tokens; model load and warm-up "
        "not timed"
    )
    head = ("run", "wall s", "titles/s", "calls", "rows/call", "ans tokens", "chars", "compliant")
    fmt = "{:<12}{:>9}{:>10}{:>7}{:>11}{:>12}{:>7}{:>11}"
    print(fmt.format(*head))
    for name, secs, out, per_call in (
        ("sequential", seq_s, seq_out, 1.0),
        ("batched", bat_s, bat_out, n_titles / calls["batched"]),
    ):
        print(
            fmt.format(
                name,
                f"{secs:.2f}",
                f"{n_titles / secs:.1f}",
                calls[name],
                f"{per_call:.1f}",
                f"{out['mean_answer_tokens']:.1f}",
                f"{out['mean_title_chars']:.1f}",
                f"{out['compliant']:.1%}",
            )
        )
    if args.repeats > 1:
        print(
            "rounds (s): sequential "
            + ", ".join(f"{t:.2f}" for t in seq_times)
            + "; batched "
            + ", ".join(f"{t:.2f}" for t in bat_times)
            + "; speedups "
            + ", ".join(f"{r:.2f}" for r in ratios)
            + " (medians count)"
        )
    if args.interleave:
        print(
            f"interleaved: the two ways took turns block by block ({ideas_per_call} ideas, one "
            "batched call, a block); each way's time is the sum over its blocks"
        )
    print(
        "ans tokens = mean tokens of the decoded answers, re-tokenized; chars and compliant = "
        "the cleaned titles (30-75 characters)"
    )
    print(f"batched speedup: {speedup:.1f}x")
    print()

    figures = {
        "ideas": len(ideas),
        "k": args.k,
        "titles": n_titles,
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "threads": threads,
        "device": lm.device.type,
        "repeats": args.repeats,
        "interleaved": int(args.interleave),
        "sequential_s": f"{seq_s:.2f}",
        "batched_s": f"{bat_s:.2f}",
        "sequential_titles_per_s": f"{n_titles / seq_s:.2f}",
        "batched_titles_per_s": f"{n_titles / bat_s:.2f}",
        "sequential_answer_tokens": f"{seq_out['mean_answer_tokens']:.2f}",
        "batched_answer_tokens": f"{bat_out['mean_answer_tokens']:.2f}",
        "batched_speedup": f"{speedup:.2f}",
    }
    print(" ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
