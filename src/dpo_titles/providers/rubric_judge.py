"""The `rubric` judge: the deterministic scoring of `dpo_titles.rubric`, no model, no key."""

from __future__ import annotations

from ..rubric import compare, score_title
from .base import Ranking, Verdict


class RubricJudge:
    name = "rubric"
    model = "rubric"

    def __init__(self):
        self.failures: list[dict] = []
        self.calls = 0

    @classmethod
    def create(cls, spec, model=None, **_) -> RubricJudge:
        """The registry's factory; the rubric has no model and no options."""
        return cls()

    def compare_many(self, requests: list[tuple[str, str, str]]) -> list[Verdict]:
        self.calls += len(requests)
        return [compare(idea, a, b) for idea, a, b in requests]

    def rank_many(self, requests: list[tuple[str, list[str]]]) -> list[Ranking]:
        self.calls += len(requests)
        out = []
        for idea, titles in requests:
            scores = [score_title(t, idea).total for t in titles]
            order = sorted(range(len(titles)), key=lambda i: -scores[i])
            out.append(Ranking(order, "ranked by rubric score", scores))
        return out
