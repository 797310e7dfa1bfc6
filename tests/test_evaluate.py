from dpo_titles.evaluate import judge_blind, summarise
from dpo_titles.providers import make_judge
from dpo_titles.providers.base import Verdict

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


def _dataset(tmp_path, judge="rubric"):
    from dpo_titles.dataset import build_dataset

    prefs = [
        {"idea": f"idea number {i}", "chosen": GOOD, "rejected": BAD, "judge": judge}
        for i in range(10)
    ]
    build_dataset(prefs, tmp_path / "ds", val_fraction=0.3, seed=0)
    return tmp_path / "ds"


def test_evaluation_ideas_add_a_file_but_never_a_trained_idea(tmp_path):
    from dpo_titles.dataset import load_split
    from dpo_titles.evaluate import held_out_ideas

    ds = _dataset(tmp_path)
    split = load_split(ds)
    trained = split["train_ideas"][0]
    val = split["validation_ideas"][0]
    extra = ["A brand new idea for a video", trained, val]
    ideas, source = held_out_ideas(split, extra, "eval.csv")
    assert ideas == [*split["validation_ideas"], "A brand new idea for a video"]
    assert trained not in ideas
    assert "+ 1 from eval.csv" in source
    alone, _ = held_out_ideas(split, [])
    assert alone == split["validation_ideas"]


def test_same_judge_for_labels_and_evaluation_is_warned_about(tmp_path, tiny_model):
    from dpo_titles.settings import Evaluation, Sampling
    from dpo_titles.stages import evaluate

    ds = _dataset(tmp_path, judge="rubric")
    metrics = evaluate(
        str(tiny_model),
        str(tiny_model),
        str(ds),
        str(tmp_path / "ev"),
        Evaluation(judge="rubric", samples_per_idea=1, reward_pairs=2),
        Sampling(),
    )
    assert metrics["label_judge"] == "rubric"
    assert any("also labelled the training pairs" in w for w in metrics["warnings"])
    # The model against itself: every implicit reward margin is zero, so none is positive.
    assert metrics["implicit_reward_pairs"] == 2
    assert metrics["implicit_reward_accuracy"] == 0.0
    assert abs(metrics["implicit_reward_margin_mean"]) < 1e-6

    other = _dataset(tmp_path / "other", judge="gemini")
    metrics = evaluate(
        str(tiny_model),
        str(tiny_model),
        str(other),
        str(tmp_path / "ev2"),
        Evaluation(judge="rubric", samples_per_idea=1, reward_pairs=0),
        Sampling(),
    )
    assert metrics["warnings"] == [] and "implicit_reward_accuracy" not in metrics


def test_summary_gives_an_interval_over_ideas_and_the_win_by_length():
    rows = []
    for i in range(8):
        # Tuned titles win when longer and lose when shorter: a judge that likes length.
        rows.append(
            {
                "idea": f"idea {i}",
                "base_title": "x" * 40,
                "tuned_title": "x" * 60,
                "verdict": "tuned",
            }
        )
        rows.append(
            {
                "idea": f"idea {i}",
                "base_title": "x" * 60,
                "tuned_title": "x" * 40,
                "verdict": "base",
            }
        )
        rows.append(
            {"idea": f"idea {i}", "base_title": "x" * 50, "tuned_title": "y" * 50, "verdict": "tie"}
        )
    m = summarise(rows, 0)
    assert m["win_rate"] == 0.5
    assert m["win_rate_ideas_ci_low"] == m["win_rate_ideas_ci_high"] == 0.5  # every idea alike
    bins = {b["bin"]: (b["n"], b["win_rate"]) for b in m["win_rate_by_length"]}
    assert bins == {"tuned shorter": (8, 0.0), "about the same": (8, 0.5), "tuned longer": (8, 1.0)}
    assert abs(m["win_rate_length_controlled"] - 0.5) < 0.05
