from dpo_titles.evaluate import judge_blind, summarise
from dpo_titles.providers import make_judge
from dpo_titles.rubric import Verdict

IDEA = "Bake crusty sourdough bread at home with a simple starter"
GOOD = "Crusty Sourdough Bread at Home With a Simple Starter"
BAD = "BREAD!!!"


class FirstPositionJudge:
    name = "biased"

    def compare_many(self, requests):
        return [Verdict("A", "", 1, 0) for _ in requests]


def test_blind_judging_credits_the_right_model_in_both_orders():
    ideas = [IDEA] * 3
    rows, flips = judge_blind(ideas, [[BAD]] * 3 + [], [[GOOD]] * 3, make_judge("rubric"), seed=0)
    assert [r["verdict"] for r in rows] == ["tuned"] * 3 and flips == 0
    rows, _ = judge_blind(ideas, [[GOOD]] * 3, [[BAD]] * 3, make_judge("rubric"), seed=0)
    assert [r["verdict"] for r in rows] == ["base"] * 3


def test_position_bias_becomes_ties_and_flips():
    rows, flips = judge_blind([IDEA] * 4, [[BAD]] * 4, [[GOOD]] * 4, FirstPositionJudge(), seed=0)
    assert [r["verdict"] for r in rows] == ["tie"] * 4 and flips == 4
    assert summarise(rows, flips)["position_flip_rate"] == 1.0


def test_summary_counts_ties_half_and_reports_compliance():
    rows = [
        {"base_title": BAD, "tuned_title": GOOD, "verdict": "tuned"},
        {"base_title": BAD, "tuned_title": GOOD, "verdict": "tuned"},
        {"base_title": GOOD, "tuned_title": GOOD, "verdict": "tie"},
        {"base_title": GOOD, "tuned_title": BAD, "verdict": "base"},
    ]
    m = summarise(rows, 0)
    assert (m["wins"], m["ties"], m["losses"], m["n_comparisons"]) == (2, 1, 1, 4)
    assert m["win_rate"] == 0.625
    assert m["win_rate_ci_low"] < 0.625 < m["win_rate_ci_high"]
    assert m["compliance_base"] == 0.5 and m["compliance_tuned"] == 0.75
