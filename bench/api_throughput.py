"""Judge-call throughput: the original project's one-call-at-a-time loop against our labelling
stage.

Everything runs against one loopback fake Gemini server (``tests/fakes``) that sleeps
``--latency`` seconds before every answer, through the real ``google-genai`` SDK, in one run:

1. ``sequential``: the original project's way, one synchronous ``generate_content`` call per pair,
   one order only; timed on ``--sequential-sample`` pairs and extrapolated linearly to
   ``--pairs`` (0: all);
2. ``ours_pairwise``: ``label_pairs(mode="pairwise")``, every pair in both orders (2 calls a pair);
3. ``ours_listwise``: ``label_pairs(mode="listwise")``, each idea's 5 titles ranked twice;
4. ``rate_bound``: ``judge.compare_many`` under ``--rpm`` requests a minute, to see how close
   the stage runs to the limit it is given.

Run from the repository root: ``.venv/bin/python bench/api_throughput.py``. The last line of the
output is ``key=value`` figures; see ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.fakes; dpo_titles is installed from src/

from dpo_titles.api_calls import CallPolicy  # noqa: E402
from dpo_titles.label import candidate_pairs, label_pairs  # noqa: E402
from dpo_titles.prompts import pairwise_prompt  # noqa: E402
from dpo_titles.providers import make_judge  # noqa: E402
from tests.fakes import Brain, GeminiServer  # noqa: E402
from tests.fakes import llm_servers as fake_servers  # noqa: E402

MODEL = "gemini-2.5-flash"
TITLES_PER_IDEA = 5
PAIRS_PER_IDEA = TITLES_PER_IDEA * (TITLES_PER_IDEA - 1) // 2  # 10

SUBJECTS = [
    "bake crusty sourdough bread at home with a simple starter",
    "travel across japan for two weeks on a tight budget",
    "learn python decorators with small practical examples",
    "grow tomatoes on a small city balcony",
    "fix a leaky kitchen faucet without calling a plumber",
    "shoot sharp night photos of the stars with a phone",
    "train for a first marathon in sixteen weeks",
    "build a budget gaming pc for under five hundred dollars",
]
FILLER = "an honest step by step look at what really works and what does not".split()


def make_candidates(n_pairs: int, seed: int = 0) -> list[dict]:
    """``n_pairs / 10`` ideas with 5 distinct titles each (20-90 characters, varied capitals),
    so that the stage sees exactly ``n_pairs`` candidate pairs."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_pairs // PAIRS_PER_IDEA):
        idea = f"Video {i + 1}: {SUBJECTS[i % len(SUBJECTS)]}"
        words = SUBJECTS[i % len(SUBJECTS)].split() + FILLER
        titles: list[str] = []
        while len(titles) < TITLES_PER_IDEA:
            length = rng.randint(20, 90)
            text = ""
            for k in range(len(words) * 3):
                word = words[(k + rng.randrange(len(words))) % len(words)]
                if rng.random() < 0.25:
                    word = word.capitalize()
                if len(text) + 1 + len(word) > length:
                    break
                text = f"{text} {word}" if text else word
            text = (text[0].upper() + text[1:]).ljust(20, "!")
            if text not in titles:
                titles.append(text)
        rows.extend({"idea": idea, "title": t} for t in titles)
    return rows


def run_sequential(pairs: list[tuple[str, str, str]], timeout_s: float) -> tuple[float, int]:
    """The original project's loop: one blocking call per pair, one order; returns (seconds,
    failures)."""
    from google import genai
    from google.genai import types

    config = types.GenerateContentConfig(
        response_mime_type="application/json",
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    began = time.perf_counter()
    client = genai.Client(
        api_key=os.environ["GEMINI_API_KEY"],
        http_options=types.HttpOptions(timeout=int(timeout_s * 1000)),
    )
    failures = 0
    for idea, a, b in pairs:
        resp = client.models.generate_content(
            model=MODEL, contents=pairwise_prompt(idea, a, b), config=config
        )
        if not resp.text or '"winner"' not in resp.text:
            failures += 1
    return time.perf_counter() - began, failures


def run_stage(candidates, mode: str, in_flight: int) -> tuple[float, dict]:
    judge = make_judge("gemini", policy=CallPolicy(max_in_flight=in_flight), cache_dir=None)
    began = time.perf_counter()
    _, stats = label_pairs(candidates, judge, mode=mode)
    return time.perf_counter() - began, stats


def run_rate_bound(pairs, calls: int, in_flight: int, rpm: float) -> tuple[float, int]:
    policy = CallPolicy(max_in_flight=in_flight, requests_per_minute=rpm)
    judge = make_judge("gemini", policy=policy, cache_dir=None)
    requests = [pairs[k % len(pairs)] for k in range(calls)]
    began = time.perf_counter()
    verdicts = judge.compare_many(requests)
    seconds = time.perf_counter() - began
    failed = sum(v.winner == "error" for v in verdicts)
    if failed:
        print(f"warning: {failed} rate-bound calls failed", file=sys.stderr)
    return seconds, judge.stats.http_calls


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=1000, help="candidate pairs (a multiple of 10)")
    p.add_argument("--latency", type=float, default=0.2, help="server latency per call (s)")
    p.add_argument("--in-flight", type=int, default=16, help="our stage's max_in_flight")
    p.add_argument("--rpm", type=float, default=600, help="requests a minute in the rate test")
    p.add_argument(
        "--sequential-sample",
        type=int,
        default=200,
        help="time this many sequential calls and extrapolate to --pairs (0: run all)",
    )
    p.add_argument(
        "--rate-seconds", type=float, default=20.0, help="about how long the rate test runs"
    )
    p.add_argument(
        "--listen-backlog",
        type=int,
        default=128,
        help="the fake server's listen backlog (0: keep socketserver's default of 5, which "
        "drops some of 16 simultaneous connects and costs each a 1 s SYN retransmit)",
    )
    args = p.parse_args(argv)
    if args.pairs < PAIRS_PER_IDEA or args.pairs % PAIRS_PER_IDEA:
        p.error(f"--pairs must be a positive multiple of {PAIRS_PER_IDEA}")
    if args.rpm <= 0:
        p.error("--rpm must be above 0")

    for name in ("httpx", "httpx2", "httpcore", "google_genai", "google.genai"):
        logging.getLogger(name).setLevel(logging.WARNING)

    candidates = make_candidates(args.pairs)
    pairs = candidate_pairs(candidates)
    assert len(pairs) == args.pairs, (len(pairs), args.pairs)
    sample = args.sequential_sample
    sample = args.pairs if sample <= 0 or sample >= args.pairs else sample
    extrapolated = sample < args.pairs
    rate_calls = max(args.in_flight, round(args.rpm * args.rate_seconds / 60))

    if args.listen_backlog > 0:
        # The fake inherits socketserver's listen(5); a real API front end accepts a burst of
        # connections, so the benchmark does too (set before the server starts listening).
        fake_servers._Server.request_queue_size = args.listen_backlog
    backlog = fake_servers._Server.request_queue_size

    with GeminiServer(latency_s=args.latency, brain=Brain()) as server:
        os.environ.update(server.env)
        for var in ("GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_API_KEY"):
            os.environ.pop(var, None)
        timeout_s = max(30.0, 20 * args.latency)

        print(f"sequential: {sample} calls, one at a time ...", file=sys.stderr, flush=True)
        seq_measured, seq_failed = run_sequential(pairs[:sample], timeout_s)
        seq_server_calls = server.calls
        per_call = seq_measured / sample
        sequential_s = per_call * args.pairs

        server.reset()
        pw_s, pw = run_stage(candidates, "pairwise", args.in_flight)
        pw_server_calls = server.calls

        server.reset()
        lw_s, lw = run_stage(candidates, "listwise", args.in_flight)
        lw_server_calls = server.calls

        server.reset()
        rate_s, rate_http = run_rate_bound(pairs, rate_calls, args.in_flight, args.rpm)
        rate_server_calls = server.calls

    achieved_rpm = rate_http / rate_s * 60
    lat = args.latency

    def ideal(calls: int, lanes: int) -> float:
        return math.ceil(calls / lanes) * lat

    def cpp(stats: dict) -> str:  # calls per labelled pair
        v = stats["calls_per_preference"]
        return "n/a" if v is None else f"{v:.3f}"

    rows = [
        # name, seconds, calls, server calls, preferences, ties, flips, failures, ideal
        (
            "sequential" + (" (extrap.)" if extrapolated else ""),
            sequential_s,
            args.pairs,
            seq_server_calls,
            "-",
            "-",
            "-",
            seq_failed,
            ideal(args.pairs, 1),
        ),
        (
            "ours_pairwise",
            pw_s,
            pw["judge_calls"],
            pw_server_calls,
            pw["preferences"],
            pw["ties"],
            pw["position_flips"],
            pw["failures"],
            ideal(pw["judge_calls"], args.in_flight),
        ),
        (
            "ours_listwise",
            lw_s,
            lw["judge_calls"],
            lw_server_calls,
            lw["preferences"],
            lw["ties"],
            lw["position_flips"],
            lw["failures"],
            ideal(lw["judge_calls"], args.in_flight),
        ),
    ]
    print()
    print(
        f"{args.pairs} candidate pairs ({args.pairs // PAIRS_PER_IDEA} ideas x "
        f"{TITLES_PER_IDEA} titles), server latency {lat:g} s, our stage {args.in_flight} in "
        f"flight, no rate limit, no cache; fake server listen backlog {backlog}"
    )
    head = ("run", "wall s", "calls", "srv calls", "labelled", "ties", "flips", "failed", "ideal s")
    fmt = "{:<26}{:>9}{:>7}{:>10}{:>9}{:>6}{:>7}{:>7}{:>9}"
    print(fmt.format(*head))
    for name, secs, calls, srv, prefs, ties, flips, failed, best in rows:
        print(
            fmt.format(name, f"{secs:.1f}", calls, srv, prefs, ties, flips, failed, f"{best:.1f}")
        )
    if extrapolated:
        print(
            f"sequential: measured {sample} calls in {seq_measured:.1f} s "
            f"({per_call * 1000:.1f} ms a call), extrapolated linearly to {args.pairs} pairs"
        )
    print(
        "srv calls = requests the server saw for that run; ideal s = ceil(calls / lanes) x "
        "latency (lanes: 1 sequential, --in-flight ours)"
    )
    speedup = sequential_s / lw_s
    speedup_pw = sequential_s / pw_s
    print(
        f"speedup vs sequential: listwise {speedup:.1f}x, pairwise {speedup_pw:.1f}x "
        "(pairwise asks both orders: 2 calls a pair, the original asked 1)"
    )
    print(
        f"calls per labelled pair: pairwise {cpp(pw)}, listwise {cpp(lw)}; per candidate pair: "
        f"pairwise {pw['judge_calls'] / pw['pairs']:.3f}, "
        f"listwise {lw['judge_calls'] / lw['pairs']:.3f}, sequential 1.000"
    )
    print(
        f"rate bound: {rate_http} calls ({rate_server_calls} at the server) in {rate_s:.1f} s at "
        f"{args.rpm:g}/min, {args.in_flight} in flight -> {achieved_rpm:.0f}/min "
        f"({achieved_rpm / args.rpm:.1%} of the limit)"
    )
    print()

    figures = {
        "pairs": args.pairs,
        "latency_s": f"{lat:g}",
        "in_flight": args.in_flight,
        "sequential_s": f"{sequential_s:.2f}",
        "ours_pairwise_s": f"{pw_s:.2f}",
        "ours_listwise_s": f"{lw_s:.2f}",
        "speedup": f"{speedup:.2f}",
        "speedup_pairwise": f"{speedup_pw:.2f}",
        "rate_limit_rpm": f"{args.rpm:g}",
        "achieved_rpm": f"{achieved_rpm:.1f}",
        "rate_bound_fraction": f"{achieved_rpm / args.rpm:.4f}",
        "calls_per_pair_pairwise": cpp(pw),
        "calls_per_pair_listwise": cpp(lw),
        "calls_per_candidate_pair_pairwise": f"{pw['judge_calls'] / pw['pairs']:.4f}",
        "calls_per_candidate_pair_listwise": f"{lw['judge_calls'] / lw['pairs']:.4f}",
        "labelled_pairwise": pw["preferences"],
        "labelled_listwise": lw["preferences"],
        "sequential_extrapolated": int(extrapolated),
        "sequential_sample": sample,
        "sequential_per_call_s": f"{per_call:.4f}",
        "rate_calls": rate_http,
        "rate_s": f"{rate_s:.2f}",
        "listen_backlog": backlog,
    }
    print(" ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
