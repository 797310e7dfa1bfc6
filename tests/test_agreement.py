"""The judge against people: known answers (a judge that is the labeller, one that always
inverts, one that always says the first) and the command's output."""

from __future__ import annotations

import json

import pytest

from dpo_titles.agreement import cohens_kappa, measure_agreement
from dpo_titles.providers.base import Ranking, Verdict


def human_rows(ideas: int = 10, per_idea: int = 4, ties: int = 0) -> list[dict]:
    rows = []
    for i in range(ideas):
        for j in range(per_idea):
            rows.append(
                {
                    "idea": f"idea {i}",
                    "chosen": f"better title {i}.{j}",
                    "rejected": f"worse title {i}.{j}",
                    "verdict": "tie" if len(rows) < ties else "preferred",
                }
            )
    return rows


class KnowsThePeople:
    """A judge that answers as the person did (can't tell where the person could not)."""

    name = "labeller"

    def __init__(self, rows, invert=False):
        self.winner = {}
        for r in rows:
            tie = r["verdict"] == "tie"
            self.winner[(r["idea"], frozenset((r["chosen"], r["rejected"])))] = (
                None if tie else (r["rejected"] if invert else r["chosen"])
            )

    def compare_many(self, requests):
        out = []
        for idea, a, b in requests:
            won = self.winner[(idea, frozenset((a, b)))]
            out.append(Verdict("tie" if won is None else ("A" if won == a else "B"), "", 0, 0))
        return out

    def rank_many(self, requests):
        out = []
        for idea, titles in requests:
            a, b = titles
            won = self.winner[(idea, frozenset((a, b)))]
            out.append(Ranking([0, 1] if won in (a, None) else [1, 0], ""))
        return out


class SaysTheFirst:
    name = "first"

    def compare_many(self, requests):
        return [Verdict("A", "", 0, 0) for _ in requests]


def test_a_judge_that_is_the_labeller_has_kappa_one():
    rows = human_rows(ties=6)
    result = measure_agreement(rows, KnowsThePeople(rows), "pairwise", seed=3)
    assert result["pairs_compared"] == 40 and result["failed"] == 0
    assert result["agreement"] == 1.0 and result["kappa"] == 1.0
    assert result["kappa_ci"] == [1.0, 1.0]
    assert result["position_flip_rate"] == 0.0
    assert result["human_cant_tell_rate"] == result["judge_cant_tell_rate"] == 6 / 40
    assert result["confusion"]["can't tell"]["can't tell"] == 6


def test_a_judge_that_always_inverts_has_kappa_minus_one():
    rows = human_rows()
    result = measure_agreement(rows, KnowsThePeople(rows, invert=True), "pairwise", seed=3)
    assert result["agreement"] == 0.0 and result["kappa"] == -1.0
    low, high = result["kappa_ci"]
    assert low <= high < 0
    # Balanced order: half the pairs show the preferred title first.
    confusion = result["confusion"]
    assert confusion["first"]["second"] == confusion["second"]["first"] == 20


def test_a_judge_that_always_says_the_first_flips_every_time():
    rows = human_rows()
    result = measure_agreement(rows, SaysTheFirst(), "pairwise", seed=3)
    assert result["position_flip_rate"] == 1.0
    assert result["judge_cant_tell_rate"] == 1.0
    assert result["kappa"] == 0.0  # it told no title apart: no better than chance


def test_listwise_asks_the_same_pairs_and_agrees_the_same():
    rows = human_rows(ideas=6, per_idea=1)
    result = measure_agreement(rows, KnowsThePeople(rows), "listwise", seed=1)
    assert result["kappa"] == 1.0 and result["judge_calls"] == 12


def test_a_file_listing_the_preferred_first_does_not_make_kappa_degenerate():
    # Without the balanced reordering every human answer would be "first", and a judge that
    # agrees on every pair would get an undefined kappa.
    rows = human_rows(ideas=3, per_idea=2)
    assert measure_agreement(rows, KnowsThePeople(rows), seed=0)["kappa"] == 1.0
    assert cohens_kappa(["first"] * 6, ["first"] * 6) is None


def test_kappa_matches_a_textbook_example():
    # Two raters, 50 items: 20 yes/yes, 15 no/no, 5 yes/no, 10 no/yes -> kappa 0.4.
    first = ["y"] * 20 + ["n"] * 15 + ["y"] * 5 + ["n"] * 10
    second = ["y"] * 20 + ["n"] * 15 + ["n"] * 5 + ["y"] * 10
    assert cohens_kappa(first, second) == pytest.approx(0.4)


def test_the_command_prints_json_on_stdout_and_a_table_on_stderr(tmp_path, capsys):
    from dpo_titles.cli import main
    from dpo_titles.files import write_csv

    rows = human_rows(ideas=4, per_idea=2)
    # Titles the rubric tells apart: in range and on the idea versus shouting filler.
    for r in rows:
        r["idea"] = f"Bake sourdough bread at home, part {r['idea'][-1]}"
        r["chosen"] = f"Sourdough Bread at Home: Part {r['idea'][-1]} {r['chosen'][-3:]}"
        r["rejected"] = f"YOU WON'T BELIEVE THIS!!! {r['rejected'][-3:]}"
    human = write_csv(tmp_path / "human.csv", rows, ["idea", "chosen", "rejected", "verdict"])
    assert main(["agreement", "--human", str(human), "--judge", "rubric"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["pairs_compared"] == 8 and result["judge"] == "rubric"
    assert result["agreement"] == 1.0
    assert "kappa" in err and "people / judge" in err


def test_the_command_refuses_a_file_without_the_columns(tmp_path, capsys):
    from dpo_titles.cli import main

    bad = tmp_path / "human.csv"
    bad.write_text("idea,title\nx,y\n")
    assert main(["agreement", "--human", str(bad), "--judge", "rubric"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "chosen" in err


def comparisons(n: int = 8) -> list[dict]:
    verdicts = ["tuned", "tuned", "base", "tie"]
    return [
        {
            "idea": f"idea {i}",
            "sample": "0",
            "base_title": f"base {i}",
            "tuned_title": f"tuned {i}",
            "verdict": verdicts[i % 4],
            "rationale": "",
        }
        for i in range(n)
    ]


def test_the_human_win_rate_stands_beside_the_judges():
    from dpo_titles.agreement import human_evaluation

    judged = comparisons()
    # The person agrees with the judge on all but one comparison, and skipped none.
    human = [dict(c, verdict=c["verdict"]) for c in judged]
    human[2]["verdict"] = "tuned"  # the judge said base
    result = human_evaluation(judged, human)
    assert result["human_comparisons"] == result["matched"] == 8
    assert (result["human_tuned"], result["human_base"], result["human_tie"]) == (5, 1, 2)
    assert result["human_win_rate"] == (5 + 1) / 8
    low, high = result["human_win_rate_ci"]
    assert low < 0.75 < high
    assert result["judge_win_rate_same"] == (4 + 1) / 8
    assert result["human_judge_agreement"] == 7 / 8


def test_report_shows_people_beside_the_judge(tmp_path):
    from dpo_titles import stages
    from dpo_titles.files import write_csv, write_json

    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    judged = comparisons()
    write_json(eval_dir / "metrics.json", {"win_rate": 0.625, "n_comparisons": 8})
    write_csv(eval_dir / "comparisons.csv", judged, list(judged[0]))
    (tmp_path / "model").mkdir()
    hostile = "</td><script>alert(1)</script>"
    human = write_csv(
        tmp_path / "human_eval.csv",
        [dict(c, verdict="tuned", labeller=hostile) for c in judged],
        ["idea", "sample", "base_title", "tuned_title", "verdict", "labeller"],
    )
    rows = human_rows(ideas=4, per_idea=2)
    agreement = measure_agreement(rows, KnowsThePeople(rows), seed=0)
    write_json(tmp_path / "agreement.json", agreement)
    summary = stages.report(
        str(eval_dir),
        str(tmp_path / "model"),
        str(tmp_path / "report.html"),
        agreement_path=str(tmp_path / "agreement.json"),
        human_eval_path=str(human),
    )
    assert summary["human_win_rate"] == 1.0
    html = (tmp_path / "report.html").read_text()
    assert "human win rate of the tuned model" in html and "100.0%" in html
    assert "agreement with people" in html and "<script>" not in html


def test_a_human_eval_file_without_verdicts_is_refused(tmp_path):
    from dpo_titles import stages
    from dpo_titles.errors import UserError
    from dpo_titles.files import write_csv, write_json

    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    judged = comparisons()
    write_json(eval_dir / "metrics.json", {"win_rate": 0.5, "n_comparisons": 8})
    write_csv(eval_dir / "comparisons.csv", judged, list(judged[0]))
    (tmp_path / "model").mkdir()
    human = write_csv(
        tmp_path / "h.csv",
        [dict(c, verdict="") for c in judged],
        ["idea", "sample", "base_title", "tuned_title", "verdict"],
    )
    with pytest.raises(UserError, match="holds no verdicts"):
        stages.report(
            str(eval_dir),
            str(tmp_path / "model"),
            str(tmp_path / "r.html"),
            human_eval_path=str(human),
        )
