"""The `rubric` judge: the deterministic scoring of `dpo_titles.rubric`, no model, no key."""

from __future__ import annotations

from ..rubric import Verdict, compare


class RubricJudge:
    name = "rubric"

    def compare_many(self, requests: list[tuple[str, str, str]]) -> list[Verdict]:
        return [compare(idea, a, b) for idea, a, b in requests]
