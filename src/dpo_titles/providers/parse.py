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


def parse_verdict(text: str | None) -> tuple[str, str]:
    """("A" | "B" | "tie", rationale) from a JSON verdict, or from a bare answer "A"/"B"."""
    if not text or not text.strip():
        raise ParseError("empty answer")
    data = loads_json(text)
    if isinstance(data, dict):
        winner = str(data.get("winner", "")).strip().strip('"').upper()
        rationale = str(data.get("rationale", "")).strip()
    else:
        winner, rationale = text.strip().strip('."').upper(), ""
        winner = {"TITLE A": "A", "TITLE B": "B"}.get(winner, winner)
    if winner in ("A", "B"):
        return winner, rationale
    if winner in ("TIE", "EQUAL", "DRAW"):
        return "tie", rationale
    raise ParseError(f"verdict names neither title: {winner[:40]!r}")


def parse_ranking(text: str | None, n: int) -> tuple[list[int], str]:
    """A permutation of 0..n-1, best first, from JSON {"ranking": [1-based numbers]}."""
    if not text or not text.strip():
        raise ParseError("empty answer")
    data = loads_json(text)
    ranking = data.get("ranking") if isinstance(data, dict) else data
    if not isinstance(ranking, list):
        raise ParseError("no ranking found")
    try:
        order = [int(x) - 1 for x in ranking]
    except (TypeError, ValueError) as exc:
        raise ParseError("ranking holds something other than numbers") from exc
    if sorted(order) != list(range(n)):
        raise ParseError(f"ranking is not a permutation of 1..{n}: {ranking}")
    rationale = str(data.get("rationale", "")).strip() if isinstance(data, dict) else ""
    return order, rationale
