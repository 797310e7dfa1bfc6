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
