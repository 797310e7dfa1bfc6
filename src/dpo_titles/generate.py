"""Stage 1: write candidate titles for each idea."""

from __future__ import annotations

import logging
import re
import time

from tqdm import tqdm

from .files import write_csv
from .providers.base import SamplingConfig, TitleGenerator

log = logging.getLogger(__name__)

CANDIDATE_COLUMNS = [
    "idea",
    "title",
    "provider",
    "model",
    "sample",
    "temperature",
    "top_p",
    "max_new_tokens",
    "seed",
    "latency_s",
]

_PREFIX = re.compile(r"^\s*(?:title\s*\d*\s*[:\-]\s*|\d+\s*[.):\-]\s+|[-*•]\s+|#+\s*)", re.I)
_QUOTES = "\"'“”‘’`"


def clean_title(raw: str) -> str:
    """Reduce a model's answer to the title: first non-empty line, no numbering, quotes or
    markdown, whitespace collapsed."""
    for line in raw.splitlines():
        line = line.strip()
        if line:
            break
    else:
        return ""
    previous = None
    while previous != line:
        previous = line
        line = _PREFIX.sub("", line).strip()
        line = line.strip("*_").strip()
        if len(line) >= 2 and line[0] in _QUOTES and line[-1] in _QUOTES:
            line = line[1:-1].strip()
    return " ".join(line.split())


def dedupe(titles: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for t in titles:
        key = t.casefold()
        if t and key not in seen:
            seen.add(key)
            out.append(t)
    return out


def generate_candidates(
    ideas: list[str], generator: TitleGenerator, n: int, sampling: SamplingConfig
) -> tuple[list[dict], dict]:
    """Sample `n` titles per idea, clean and de-duplicate them.

    Returns the candidate rows and stage statistics. Ideas whose answers clean to nothing or to
    duplicates simply have fewer candidates; the statistics count them.
    """
    began = time.perf_counter()
    with tqdm(total=len(ideas), desc="generate", unit="idea") as bar:
        answers = generator.generate(ideas, n, sampling, progress=bar)
    rows: list[dict] = []
    empty = duplicates = 0
    for idea, raw in zip(ideas, answers, strict=True):
        cleaned = [(clean_title(a.text), a) for a in raw]
        empty += sum(1 for t, _ in cleaned if not t)
        kept = dedupe([t for t, _ in cleaned])
        duplicates += sum(1 for t, _ in cleaned if t) - len(kept)
        by_title = {}
        for t, a in cleaned:
            by_title.setdefault(t, a)
        for t in kept:
            a = by_title[t]
            rows.append(
                {
                    "idea": idea,
                    "title": t,
                    "provider": generator.provider,
                    "model": generator.model,
                    "sample": a.sample,
                    **sampling.as_dict(),
                    "latency_s": a.latency_s,
                }
            )
    stats = {
        "ideas": len(ideas),
        "requested": len(ideas) * n,
        "candidates": len(rows),
        "empty_answers": empty,
        "duplicate_answers": duplicates,
        "seconds": round(time.perf_counter() - began, 2),
    }
    log.info(
        "generated %d candidates for %d ideas in %.1fs", len(rows), len(ideas), stats["seconds"]
    )
    return rows, stats


def write_candidates(rows: list[dict], path, *, force: bool = False) -> None:
    """The candidates CSV: one row per cleaned, de-duplicated title."""
    write_csv(path, rows, CANDIDATE_COLUMNS, force=force)
