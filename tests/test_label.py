from dpo_titles.label import candidate_pairs, label_pairs
from dpo_titles.providers import make_judge
from dpo_titles.providers.base import Verdict

GOOD = "Crusty Sourdough Bread at Home With a Simple Starter"
SHORT = "Bread"
LOUD = "SOURDOUGH BREAD AT HOME!!! MUST WATCH"
IDEA = "Bake crusty sourdough bread at home with a simple starter"


def rows(idea, *titles):
    return [{"idea": idea, "title": t} for t in titles]


def test_all_pairs_within_each_idea_only():
    cands = rows("a", "1", "2", "3") + rows("b", "4", "5") + rows("c", "6")
    pairs = candidate_pairs(cands)
    assert len(pairs) == 3 + 1 + 0
    assert all((i == "a") == (x in "123") for i, x, _ in pairs)


def test_rubric_labels_better_title_as_chosen():
    prefs, stats = label_pairs(rows(IDEA, GOOD, SHORT, LOUD), make_judge("rubric"))
    assert stats["pairs"] == 3 and stats["judge_calls"] == 6
    assert all(p["chosen"] == GOOD for p in prefs if GOOD in (p["chosen"], p["rejected"]))
    assert stats["preferences"] + stats["ties"] + stats["position_flips"] == 3
    assert all(p["judge"] == "rubric" and p["rationale"] for p in prefs)


class FirstPositionJudge:
    """A judge that always prefers whatever it sees first: the bias the swap is there to catch."""

    name = "biased"

    def compare_many(self, requests):
        return [Verdict("A", "first wins", 1, 0) for _ in requests]


class TieJudge:
    name = "ties"

    def compare_many(self, requests):
        return [Verdict("tie", "", 0, 0) for _ in requests]


def test_position_bias_yields_no_preferences():
    prefs, stats = label_pairs(rows(IDEA, GOOD, SHORT, LOUD), FirstPositionJudge())
    assert prefs == []
    assert stats["position_flips"] == 3
    assert stats["calls_per_preference"] is None


def test_ties_are_dropped_and_counted():
    prefs, stats = label_pairs(rows(IDEA, GOOD, SHORT), TieJudge())
    assert prefs == [] and stats["ties"] == 1
