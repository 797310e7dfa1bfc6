"""`dpo-titles annotate`: a person labels title pairs on a local web page.

- `pairs`: which pairs to ask (from candidates, optionally only the judge's pairs, or from the
  evaluate stage's comparisons), sampled and oriented with a seed.
- `answers`: the answers file: its columns, checked and resumed, saved after every answer.
- `server`: the session and the token-guarded HTTP server on 127.0.0.1 that shows the page
  (`page.html`).

`open_session` sets it all up and starts serving; `annotate` is the command: it prints the
address, waits until every pair is answered (or Ctrl-C) and returns the summary.
"""

from __future__ import annotations

import logging
import sys

from ..errors import UserError
from ..settings import Generation, check_number, check_seed
from .answers import Answers, default_labeller
from .pairs import CANDIDATES, COMPARISONS, from_candidates, from_comparisons
from .server import LINGER_S, Session, start

log = logging.getLogger(__name__)

# The generate stage's default seed: one default seed for the whole tool.
DEFAULT_SEED = Generation.seed

__all__ = ["DEFAULT_SEED", "Session", "annotate", "open_session"]


def _mode(candidates, comparisons) -> str:
    if bool(candidates) == bool(comparisons):
        raise UserError(
            "pass exactly one of --candidates (titles from `generate`) or --comparisons "
            "(comparisons.csv from `evaluate`)"
        )
    return CANDIDATES if candidates else COMPARISONS


def open_session(
    out,
    *,
    candidates=None,
    comparisons=None,
    pairs: int | None = None,
    seed: int = DEFAULT_SEED,
    preferences=None,
    labeller: str | None = None,
    port: int = 0,
) -> Session:
    """Check everything, choose the pairs, load the answers saved in `out` so far, and start
    serving the page on 127.0.0.1:`port` (0: any free port)."""
    mode = _mode(candidates, comparisons)
    if pairs is not None:
        check_number("pairs", pairs, low=1, integer=True)
    check_seed("seed", seed)
    check_number("port", port, low=0, high=65535, integer=True)
    if preferences and mode != CANDIDATES:
        raise UserError("--preferences goes with --candidates (the pairs the judge labelled)")
    labeller = default_labeller() if labeller is None else " ".join(labeller.split())
    if not labeller:
        raise UserError("--labeller is empty: give a name, or leave it out for the user name")
    source = candidates or comparisons
    answers = Answers.open(out, mode, inputs=[source, preferences])
    if mode == CANDIDATES:
        chosen = from_candidates(source, pairs=pairs, seed=seed, preferences=preferences)
    else:
        chosen = from_comparisons(source, pairs=pairs, seed=seed)
    return start(chosen, answers, labeller, port=port)


def annotate(out, *, linger: float = LINGER_S, **options) -> dict:
    """The `annotate` command: serve the page until every pair is answered (or Ctrl-C), and
    return the summary; the address goes to stderr, as stdout holds the summary alone."""
    session = open_session(out, **options)
    try:
        if not session.queue:
            print(
                f"dpo-titles annotate: all {session.total} pairs are answered in {out} already",
                file=sys.stderr,
                flush=True,
            )
            return session.summary()
        print(
            f"dpo-titles annotate: {len(session.queue)} of {session.total} pairs to label; "
            f"open {session.url} (Ctrl-C stops; every answer is saved as it is given)",
            file=sys.stderr,
            flush=True,
        )
        try:
            return session.wait(linger)
        except KeyboardInterrupt:
            session.close()
            summary = session.summary()
            print(
                f"dpo-titles annotate: stopped; {summary['answered']} answers are saved in "
                f"{out}, {summary['remaining']} to go: run the same command to resume",
                file=sys.stderr,
                flush=True,
            )
            return summary
    finally:
        session.close()
