"""The Together and Gemini back ends, through their real SDKs, against loopback servers that
speak the same wire formats, with faults injected."""

import dataclasses
import os
import subprocess
import sys
import time

import pytest

from dpo_titles.api_calls import CallPolicy
from dpo_titles.errors import UserError
from dpo_titles.generate import generate_candidates
from dpo_titles.label import label_pairs
from dpo_titles.providers import SamplingConfig, make_generator, make_judge
from tests.fakes import Brain, FaultPlan, GeminiServer, TogetherServer

SECRET = "sk-test-DO-NOT-LEAK-1234567890"
IDEAS = [
    "Bake crusty sourdough bread at home with a simple starter",
    "Travel across Japan for two weeks on a tight budget",
    "Learn Python decorators with small practical examples",
    "Grow tomatoes on a small city balcony",
    "Fix a leaky kitchen faucet without calling a plumber",
    "Shoot sharp night photos of the stars with a phone",
]
FAST = CallPolicy(
    max_in_flight=8,
    backoff_base_s=0.01,
    backoff_max_s=0.05,
    timeout_s=0.5,
    max_retries=8,
    parse_retries=3,
)
ALL_FAULTS = ("429", "500", "503", "timeout", "malformed", "empty", "few", "garbage")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in (
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_API_KEY",
        "TOGETHER_API_KEY",
        "GEMINI_API_KEY",
        "TOGETHER_BASE_URL",
        "GOOGLE_GEMINI_BASE_URL",
    ):
        monkeypatch.delenv(var, raising=False)


def serve(monkeypatch, server):
    server.start()
    for key, value in server.env.items():
        monkeypatch.setenv(key, SECRET if key.endswith("API_KEY") else value)
    server.api_key = SECRET
    return server


@pytest.mark.parametrize("server_cls", [TogetherServer, GeminiServer])
def test_generation_with_30_percent_faults_loses_no_idea(monkeypatch, server_cls, tmp_path):
    faults = FaultPlan(rate=0.3, kinds=ALL_FAULTS, seed=3, timeout_s=1.5, retry_after_s=0.02)
    server = serve(monkeypatch, server_cls(faults=faults, brain=Brain(title_format="mixed")))
    try:
        gen = make_generator(
            server_cls.__name__[:-6].lower(), policy=FAST, cache_dir=str(tmp_path / "cache")
        )
        rows, stats = generate_candidates(IDEAS, gen, 5, SamplingConfig())
    finally:
        server.stop()
    assert gen.failures == []
    counts = {i: sum(r["idea"] == i for r in rows) for i in IDEAS}
    assert counts == {i: 5 for i in IDEAS}
    assert all(30 <= len(r["title"]) <= 75 for r in rows)
    assert gen.stats.retries > 0 and gen.stats.http_calls > len(IDEAS)
    assert sum(1 for f in faults.history if f) > 0


@pytest.mark.parametrize("mode", ["pairwise", "listwise"])
def test_judging_with_faults_loses_no_pair(monkeypatch, mode, tmp_path):
    kinds = ("429", "500", "503", "malformed", "empty", "blocked", "neither", "garbage")
    server = serve(monkeypatch, GeminiServer(faults=FaultPlan(rate=0.3, kinds=kinds, seed=5)))
    candidates = [{"idea": i, "title": t} for i in IDEAS[:4] for t in Brain().titles(i, 5)]
    try:
        # A pair is lost only after parse_retries + 1 unusable answers in a row. With 5 of 8
        # kinds unusable at rate 0.3, FAST's 3 re-asks lose a pair in a few percent of runs,
        # depending on which concurrent request draws which fault; 8 make that negligible.
        policy = dataclasses.replace(FAST, parse_retries=8)
        judge = make_judge("gemini", policy=policy, cache_dir=str(tmp_path / "cache"))
        prefs, stats = label_pairs(candidates, judge, mode)
    finally:
        server.stop()
    assert stats["pairs"] == 40 and stats["failures"] == 0
    assert stats["preferences"] + stats["ties"] + stats["position_flips"] == 40
    assert stats["preferences"] > 0
    if mode == "listwise":
        assert stats["judge_calls"] == 8
    else:
        assert stats["judge_calls"] == 80
    for p in prefs:
        assert p["chosen"] != p["rejected"] and p["judge"] == "gemini"


def test_position_bias_is_caught_by_both_orders(monkeypatch):
    server = serve(monkeypatch, TogetherServer(brain=Brain(position_bias=1.0)))
    candidates = [{"idea": IDEAS[0], "title": t} for t in Brain().titles(IDEAS[0], 4)]
    try:
        prefs, stats = label_pairs(candidates, make_judge("together", policy=FAST), "pairwise")
    finally:
        server.stop()
    assert prefs == [] and stats["position_flips"] == 6 and stats["position_flip_rate"] == 1.0


def test_unrecoverable_answers_are_recorded_not_dropped(monkeypatch):
    server = serve(monkeypatch, GeminiServer(faults=FaultPlan(rate=1.0, kinds=("neither",))))
    candidates = [{"idea": IDEAS[0], "title": t} for t in Brain().titles(IDEAS[0], 3)]
    try:
        judge = make_judge("gemini", policy=FAST)
        prefs, stats = label_pairs(candidates, judge, "pairwise")
    finally:
        server.stop()
    assert prefs == [] and stats["failures"] == 3
    assert len(judge.failures) == 6
    assert all("asked 4 times" in f["reason"] for f in judge.failures)


def test_missing_key_fails_before_any_request(monkeypatch):
    with pytest.raises(UserError, match="set GEMINI_API_KEY"):
        make_judge("gemini")
    with pytest.raises(UserError, match="set TOGETHER_API_KEY"):
        make_generator("together")


def test_rejected_key_is_one_clear_error(monkeypatch):
    server = serve(monkeypatch, TogetherServer())
    monkeypatch.setenv("TOGETHER_API_KEY", "wrong-key")
    try:
        gen = make_generator("together", policy=FAST)
        with pytest.raises(UserError, match="rejected TOGETHER_API_KEY"):
            generate_candidates(IDEAS[:1], gen, 3, SamplingConfig())
    finally:
        server.stop()


def test_rate_limit_is_respected(monkeypatch):
    server = serve(monkeypatch, GeminiServer())
    candidates = [{"idea": IDEAS[0], "title": t} for t in Brain().titles(IDEAS[0], 3)]
    policy = CallPolicy(max_in_flight=8, requests_per_minute=600, timeout_s=2)
    try:
        began = time.perf_counter()
        label_pairs(candidates, make_judge("gemini", policy=policy), "pairwise")
        elapsed = time.perf_counter() - began
        starts = [r["time"] for r in server.requests]
    finally:
        server.stop()
    # Six calls at 10 a second are spread over at least half a second, never sent in a burst.
    assert len(starts) == 6 and elapsed >= 0.45
    assert len(starts) == 6


def _cli(*args, env):
    return subprocess.Popen(
        [sys.executable, "-m", "dpo_titles.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_run_resumes_without_repeating_answered_requests(monkeypatch, tmp_path):
    server = serve(monkeypatch, GeminiServer(latency_s=0.05))
    candidates = tmp_path / "cand.csv"
    lines = ["idea,title"] + [f'"{i}","{t}"' for i in IDEAS for t in Brain().titles(i, 5)]
    candidates.write_text("\n".join(lines) + "\n")
    env = dict(os.environ)
    args = [
        "label",
        "--candidates",
        str(candidates),
        "--out",
        str(tmp_path / "prefs.csv"),
        "--judge",
        "gemini",
        "--mode",
        "pairwise",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--max-in-flight",
        "2",
    ]
    try:
        first = _cli(*args, env=env)
        while server.calls < 40:
            time.sleep(0.01)
        first.kill()
        first.wait()
        answered = len(list((tmp_path / "cache").rglob("*.json")))
        before = server.calls
        assert not (tmp_path / "prefs.csv").exists()
        second = _cli(*args, env=env)
        out, err = second.communicate(timeout=60)
    finally:
        server.stop()
    assert second.returncode == 0, err[-2000:]
    total = 2 * 6 * 10
    assert 30 <= answered < total
    # Only what was not yet answered is asked again (at most the killed run's in-flight calls
    # were sent but never written).
    assert server.calls - before == total - answered


def test_no_key_in_any_output(monkeypatch, tmp_path):
    faults = FaultPlan(rate=0.3, kinds=("429", "500", "malformed"), seed=2, retry_after_s=0.01)
    server = serve(monkeypatch, TogetherServer(faults=faults))
    env = dict(os.environ)
    try:
        gen = _cli(
            "generate",
            "--ideas",
            str(_ideas_file(tmp_path)),
            "--out",
            str(tmp_path / "c.csv"),
            "--provider",
            "together",
            "--n",
            "3",
            "--cache-dir",
            str(tmp_path / "cache"),
            env=env,
        )
        g_out, g_err = gen.communicate(timeout=60)
        lab = _cli(
            "label",
            "--candidates",
            str(tmp_path / "c.csv"),
            "--out",
            str(tmp_path / "p.csv"),
            "--judge",
            "together",
            "--cache-dir",
            str(tmp_path / "cache"),
            env=env,
        )
        l_out, l_err = lab.communicate(timeout=60)
        bad_env = {**env, "TOGETHER_API_KEY": SECRET + "x"}
        bad = _cli(
            "label",
            "--candidates",
            str(tmp_path / "c.csv"),
            "--out",
            str(tmp_path / "p2.csv"),
            "--judge",
            "together",
            env=bad_env,
        )
        b_out, b_err = bad.communicate(timeout=60)
    finally:
        server.stop()
    assert gen.returncode == 0 and lab.returncode == 0, g_err[-1000:] + l_err[-1000:]
    assert bad.returncode == 2 and "Traceback" not in b_err
    texts = [g_out, g_err, l_out, l_err, b_out, b_err]
    texts += [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()]
    assert not any(SECRET in t for t in texts)
    assert (tmp_path / "p.csv").read_text().count("\n") > 1


def _ideas_file(tmp_path):
    path = tmp_path / "ideas.csv"
    path.write_text("idea\n" + "\n".join(IDEAS[:3]) + "\n")
    return path


def test_rate_limiter_spaces_starts_evenly():
    import asyncio

    from dpo_titles.api_calls import RateLimiter

    async def main():
        limiter = RateLimiter(per_minute=600)
        stamps = []

        async def one():
            await limiter.wait()
            stamps.append(time.monotonic())

        await asyncio.gather(*(one() for _ in range(8)))
        return sorted(stamps)

    stamps = asyncio.run(main())
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    # 600 a minute is one start every 0.1 s; a sleep never ends early by more than the clock's
    # resolution.
    assert min(gaps) >= 0.095
