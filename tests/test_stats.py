import pytest

from dpo_titles.stats import distinct_n, length_summary, wilson_interval


def test_wilson_matches_published_values():
    # 8 successes of 10: Wilson 95% interval is 0.490 to 0.943.
    low, high = wilson_interval(0.8, 10)
    assert low == pytest.approx(0.4902, abs=1e-3)
    assert high == pytest.approx(0.9433, abs=1e-3)


def test_wilson_edges():
    assert wilson_interval(0.5, 0) == (0.0, 1.0)
    low, high = wilson_interval(1.0, 50)
    assert high == pytest.approx(1.0) and 0.92 < low < 0.94
    low, high = wilson_interval(0.0, 50)
    assert low == pytest.approx(0.0) and 0.06 < high < 0.08


def test_distinct_and_lengths():
    assert distinct_n(["a b c", "a b d"], 2) == pytest.approx(3 / 4)
    assert distinct_n([], 2) == 0.0
    assert length_summary(["abc", "abcde", "a"]) == (3.0, 3.0)


def test_the_length_controlled_win_rate_removes_a_win_that_is_only_length():
    from dpo_titles.stats import length_controlled_win_rate

    # The tuned title wins exactly when it is longer, loses when shorter: length is all of it.
    diffs = [d for d in range(-20, 21) if d]
    outcomes = [1.0 if d > 0 else 0.0 for d in diffs]
    # ... and the tuned model writes longer titles three times as often.
    diffs += [15] * 80
    outcomes += [1.0] * 80
    raw = sum(outcomes) / len(outcomes)
    assert raw > 0.8
    lc = length_controlled_win_rate(outcomes, diffs)
    assert abs(lc - 0.5) < 0.1


def test_the_length_controlled_win_rate_keeps_a_win_that_is_not_length():
    import random

    from dpo_titles.stats import length_controlled_win_rate

    rng = random.Random(0)
    diffs = [rng.uniform(-20, 20) for _ in range(400)]
    outcomes = [1.0 if rng.random() < 0.75 else 0.0 for _ in diffs]
    lc = length_controlled_win_rate(outcomes, diffs)
    assert abs(lc - sum(outcomes) / len(outcomes)) < 0.05
    assert length_controlled_win_rate([1.0] * 5, [1.0] * 5) is None  # too little to fit


def test_a_bootstrap_over_ideas_is_wider_when_ideas_disagree():
    from dpo_titles.stats import bootstrap_over_groups, win_rate

    # Same overall rate (0.5); the tuned model wins all of half the ideas and none of the rest.
    split = {f"i{n}": ["tuned" if n % 2 else "base"] * 10 for n in range(10)}
    mixed = {f"i{n}": ["tuned", "base"] * 5 for n in range(10)}
    low_s, high_s = bootstrap_over_groups(split, win_rate, seed=1)
    low_m, high_m = bootstrap_over_groups(mixed, win_rate, seed=1)
    assert low_m == high_m == 0.5
    assert low_s < 0.35 and high_s > 0.65
    assert bootstrap_over_groups({"only": ["tuned"]}, win_rate) is None
