"""A deterministic rubric for YouTube titles, built from the original project's guidance.

It needs no model and no key, so the embedded default can label preferences offline and a test can
know the right answer. A title's score is the sum of these parts (higher is better):

| part | points |
| --- | --- |
| length within 30-75 characters (the prompt's guidance) | +3; +1 if at most 5 outside; else 0 |
| relevance: share of the idea's content words the title reuses (crude stems) | up to +3 |
| off topic: not one content word of the idea (a title for some other video) | -3 |
| shouting: words of 4+ letters in ALL CAPS | -1.5 each, at most -3 |
| filler and clickbait phrases ("you won't believe", "must watch", ...) | -2 each, at most -4 |
| runs of "!" or "?" (two or more) | -1 |
| leftovers of the prompt or formatting ("Title:", "Video Idea", quotes, list numbers) | -2 |
| a word repeated three or more times | -1 |
| empty title | score 0, nothing else counts |

Off topic is a penalty, not only a missing +3: without it a clean title of another video (3 for its
length) outscored an on-topic one with one habit to fix, and preference tuning learnt to ignore the
idea (on the tiny offline model, DPO raised the corpus's off-topic titles on data/eval_ideas.csv
from 8.5% of the base's to 14.5%; with the penalty and the local recipe the tuned model's were
3.8%, and with the current model none of 400).

Two titles whose scores differ by less than `TIE_MARGIN` are a tie: the rubric does not pretend to
tell them apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .prompts import MAX_TITLE_CHARS, MIN_TITLE_CHARS
from .providers.base import Verdict

TIE_MARGIN = 0.5
LENGTH_SLACK = 5

STOPWORDS = frozenset(
    """a an the and or but of to in on for with without at by from into onto about over under
    is are was were be been being it its this that these those my your our their his her i you we
    they me us them how what why when where who which do does did doing done can could should would
    will just very really more most some any all every each than then so as if not no yes up down
    out off only own same too also get got make makes making video videos youtube idea
    ideas""".split()
)

FILLER_PHRASES = (
    "you won't believe",
    "you wont believe",
    "won't believe",
    "must watch",
    "must see",
    "like and subscribe",
    "smash that like",
    "subscribe",
    "click here",
    "shocking",
    "gone wrong",
    "insane",
    "mind blowing",
    "mind-blowing",
    "jaw dropping",
    "jaw-dropping",
    "not clickbait",
    "omg",
)

_LEFTOVER = re.compile(
    r"^\s*(title\s*:|\d+[.)]\s|[-*•]\s)|video idea|additional guidance|\"|“|”", re.I
)
_WORD = re.compile(r"[A-Za-z0-9']+")


def _stem(word: str) -> str:
    word = word.lower().strip("'")
    for suffix in ("ing", "ies", "es", "s", "ed"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    """The stems of the words that carry meaning (no stopwords, no one-letter words)."""
    words = (w for w in _WORD.findall(text) if len(w) > 1)
    return {_stem(w) for w in words if w.lower() not in STOPWORDS}


@dataclass(frozen=True)
class Score:
    total: float
    parts: dict[str, float] = field(default_factory=dict)

    def explain(self) -> str:
        shown = [f"{name} {value:+g}" for name, value in self.parts.items() if value]
        return ", ".join(shown) if shown else "nothing scored"


def score_title(title: str, idea: str) -> Score:
    """Score one title for one idea; see the module docstring for the parts."""
    title = title.strip()
    if not title:
        return Score(0.0, {"empty": 0.0})
    parts: dict[str, float] = {}
    n = len(title)
    if MIN_TITLE_CHARS <= n <= MAX_TITLE_CHARS:
        parts["length"] = 3.0
    elif MIN_TITLE_CHARS - LENGTH_SLACK <= n <= MAX_TITLE_CHARS + LENGTH_SLACK:
        parts["length"] = 1.0
    else:
        parts["length"] = 0.0

    idea_words = content_words(idea)
    if idea_words:
        shared = len(idea_words & content_words(title))
        # Reusing three key words is as relevant as a 30-75 character title can be expected to be.
        parts["relevance"] = round(3.0 * min(1.0, shared / min(3, len(idea_words))), 3)
        parts["off_topic"] = -3.0 if not shared else 0.0

    shouted = [w for w in _WORD.findall(title) if len(w) >= 4 and w.isupper()]
    parts["shouting"] = -min(3.0, 1.5 * len(shouted))

    lowered = title.lower()
    fillers = [p for p in FILLER_PHRASES if p in lowered]
    # "you won't believe" also contains "won't believe": count a phrase once, not its pieces.
    fillers = [p for p in fillers if not any(p != q and p in q for q in fillers)]
    parts["filler"] = -min(4.0, 2.0 * len(fillers))

    parts["punctuation"] = -1.0 if re.search(r"[!?]{2,}", title) else 0.0
    parts["leftovers"] = -2.0 if _LEFTOVER.search(title) else 0.0

    counts: dict[str, int] = {}
    for w in _WORD.findall(lowered):
        counts[w] = counts.get(w, 0) + 1
    parts["repetition"] = -1.0 if counts and max(counts.values()) >= 3 else 0.0

    return Score(round(sum(parts.values()), 3), parts)


def compare(idea: str, title_a: str, title_b: str) -> Verdict:
    a, b = score_title(title_a, idea), score_title(title_b, idea)
    if abs(a.total - b.total) < TIE_MARGIN:
        winner = "tie"
    else:
        winner = "A" if a.total > b.total else "B"
    rationale = f"A {a.total:g} ({a.explain()}); B {b.total:g} ({b.explain()})"
    return Verdict(winner, rationale, a.total, b.total)
