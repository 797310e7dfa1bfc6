"""Reading model answers robustly: title lists, verdicts and rankings."""

from __future__ import annotations

import json
import re

from ..api_calls import ParseError
from ..generate import clean_title

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S | re.I)
_LIST_ITEM = re.compile(r"^\s*(?:\d+\s*[.):-]|[-*•])\s+")


def _json_candidates(text: str):
    yield from _FENCE.findall(text)
    yield text
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start >= 0:
        yield text[start:]


def loads_json(text: str):
    """The first JSON value found in `text` (bare, in a ``` fence, or after a preamble)."""
    for chunk in _json_candidates(text.strip()):
        try:
            return json.JSONDecoder().raw_decode(chunk.strip())[0]
        except (json.JSONDecodeError, ValueError):
            continue
    return None


def parse_titles(text: str | None) -> list[str]:
    """Titles from a numbered or bulleted list, JSON (a list, or an object holding one) or,
    failing those, one title per line. Preambles such as "Here are 5 titles:" are skipped."""
    if not text or not text.strip():
        raise ParseError("empty answer")
    data = loads_json(text)
    if isinstance(data, dict):
        data = next((v for v in data.values() if isinstance(v, list)), None)
    if isinstance(data, list) and data and all(isinstance(x, str) for x in data):
        return [t for t in (clean_title(x) for x in data) if t]
    lines = [ln for ln in text.splitlines() if ln.strip()]
    listed = [ln for ln in lines if _LIST_ITEM.match(ln)]
    chosen = listed if listed else [ln for ln in lines if not ln.rstrip().endswith(":")]
    titles = [t for t in (clean_title(ln) for ln in chosen) if t]
    if not titles:
        raise ParseError("no titles found")
    return titles


def _title_key(text: str) -> str:
    return " ".join(clean_title(text).casefold().split()).rstrip(".").strip()


def _same_title(answer: str, title: str) -> bool:
    """The answer names this title: the same words, whatever the case, spacing, quotes,
    numbering or a closing full stop."""
    return _title_key(answer) == _title_key(title)


def parse_verdict(text: str | None, titles: tuple[str, str] | None = None) -> tuple[str, str]:
    """("A" | "B" | "tie", rationale) from a JSON verdict, or from a bare answer "A"/"B".
    With `titles` (A's, B's), a verdict that names the winning title itself is read too."""
    if not text or not text.strip():
        raise ParseError("empty answer")
    data = loads_json(text)
    if isinstance(data, dict):
        said = str(data.get("winner", "")).strip()
        rationale = str(data.get("rationale", "")).strip()
    else:
        said, rationale = text.strip(), ""
    winner = said.strip('."').upper()
    winner = {"TITLE A": "A", "TITLE B": "B"}.get(winner, winner)
    if winner in ("A", "B"):
        return winner, rationale
    if winner in ("TIE", "EQUAL", "DRAW"):
        return "tie", rationale
    if titles is not None:
        named = [side for side, title in zip("AB", titles, strict=True) if _same_title(said, title)]
        if len(named) == 1:
            return named[0], rationale
    raise ParseError(f"verdict names neither title: {winner[:40]!r}")


_NUMBERED = re.compile(r"^\s*(?:title\s*)?#?\s*(\d+)\s*$", re.I)


def parse_ranking(text: str | None, titles: list[str]) -> tuple[list[int], str]:
    """A permutation of 0..n-1, best first, from JSON {"ranking": [...]}: the titles' numbers
    as shown (1-based), 0-based numbers, or the titles themselves. Only an answer that fits one
    reading exactly is taken; anything else is asked again."""
    n = len(titles)
    if not text or not text.strip():
        raise ParseError("empty answer")
    data = loads_json(text)
    ranking = data.get("ranking") if isinstance(data, dict) else data
    if not isinstance(ranking, list):
        raise ParseError("no ranking found")
    rationale = str(data.get("rationale", "")).strip() if isinstance(data, dict) else ""
    numbers = [_as_number(x) for x in ranking]
    if all(x is not None for x in numbers):
        if sorted(numbers) == list(range(1, n + 1)):
            return [x - 1 for x in numbers], rationale
        if sorted(numbers) == list(range(n)):
            return list(numbers), rationale
        raise ParseError(f"ranking is not a permutation of 1..{n}: {ranking}")
    if all(isinstance(x, str) for x in ranking):
        order = []
        for item in ranking:
            matches = [k for k, title in enumerate(titles) if _same_title(item, title)]
            if len(matches) != 1:
                raise ParseError(f"ranking names a title that is not one of the {n}: {item[:60]!r}")
            order.append(matches[0])
        if sorted(order) == list(range(n)):
            return order, rationale
    raise ParseError(f"ranking is not a permutation of the {n} titles: {str(ranking)[:120]}")


def _as_number(item) -> int | None:
    """An item of a ranking as a number: 3, 3.0, "3", "#3", "Title 3"; else None."""
    if isinstance(item, bool):
        return None
    if isinstance(item, int):
        return item
    if isinstance(item, float) and item.is_integer():
        return int(item)
    if isinstance(item, str):
        match = _NUMBERED.match(item)
        if match:
            return int(match.group(1))
    return None
