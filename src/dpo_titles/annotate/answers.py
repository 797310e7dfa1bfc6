"""The answers file of `dpo-titles annotate`: its columns, how an answer becomes a row, and the
file itself (checked, loaded to resume, rewritten whole after every answer).

Candidates mode writes human preferences that `prepare --human-preferences` reads as they are
(`verdict` `preferred`, or `tie`, which it skips); comparisons mode writes a human's verdict on
each base-vs-tuned row. `shown_left` keeps which title was on the left, so position bias can be
measured later. Every write goes through the output policy (`files.write_csv`): the rename is
the commit, and the file is recorded as ours, which is what lets a later session resume it.
"""

from __future__ import annotations

import datetime
import getpass
import os
import threading
from pathlib import Path

from ..errors import UserError
from ..files import read_csv, write_csv
from ..outputs import check_output, sha256_file
from .pairs import (
    BASE,
    CANDIDATES,
    COMPARISONS,
    TUNED,
    Pair,
    candidate_pair_id,
    comparison_pair_id,
)

HUMAN_PREFERENCE_COLUMNS = [
    "idea",
    "chosen",
    "rejected",
    "verdict",
    "labeller",
    "labelled_at",
    "shown_left",
    "pair",
]
HUMAN_EVAL_COLUMNS = [
    "idea",
    "sample",
    "base_title",
    "tuned_title",
    "verdict",
    "labeller",
    "labelled_at",
    "shown_left",
    "pair",
]
LEFT, RIGHT, TIE = "left", "right", "tie"
CHOICES = (LEFT, RIGHT, TIE)
PREFERRED = "preferred"


def columns_for(mode: str) -> list[str]:
    """The answers file's columns in `mode` (candidates or comparisons)."""
    return HUMAN_PREFERENCE_COLUMNS if mode == CANDIDATES else HUMAN_EVAL_COLUMNS


def verdicts_for(mode: str) -> tuple[str, ...]:
    """The verdicts a file of `mode` holds, in the order summaries count them."""
    return (PREFERRED, TIE) if mode == CANDIDATES else (TUNED, BASE, TIE)


def default_labeller() -> str:
    """The OS user name, or "human" where the system has none."""
    try:
        return getpass.getuser() or "human"
    except Exception:  # noqa: BLE001 - getuser raises OSError or KeyError without a user entry
        return "human"


def now() -> str:
    """The current time, ISO-8601 in UTC, to the second."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def answer_row(mode: str, pair: Pair, choice: str, labeller: str, when: str) -> dict:
    """The row that records `choice` (left, right or tie) on `pair` as it was shown."""
    if choice not in CHOICES:
        raise ValueError(choice)
    common = {"idea": pair.idea, "labeller": labeller, "labelled_at": when, "pair": pair.id}
    if mode == CANDIDATES:
        if choice == RIGHT:
            return {
                **common,
                "chosen": pair.right,
                "rejected": pair.left,
                "verdict": PREFERRED,
                "shown_left": "rejected",
            }
        # A tie keeps the shown order: chosen is the left title, rejected the right one.
        verdict = PREFERRED if choice == LEFT else TIE
        return {
            **common,
            "chosen": pair.left,
            "rejected": pair.right,
            "verdict": verdict,
            "shown_left": "chosen",
        }
    right_role = BASE if pair.left_role == TUNED else TUNED
    base, tuned = (pair.left, pair.right) if pair.left_role == BASE else (pair.right, pair.left)
    verdict = {LEFT: pair.left_role, RIGHT: right_role, TIE: TIE}[choice]
    return {
        **common,
        "sample": pair.sample,
        "base_title": base,
        "tuned_title": tuned,
        "verdict": verdict,
        "shown_left": pair.left_role,
    }


def row_pair_id(mode: str, row: dict) -> str:
    """The id of the pair a saved row answers (computed again from its titles)."""
    if mode == CANDIDATES:
        return candidate_pair_id(row["idea"], row["chosen"], row["rejected"])
    return comparison_pair_id(row["idea"], row["sample"], row["base_title"], row["tuned_title"])


def row_side(mode: str, row: dict) -> str:
    """Which side won in a saved row, as it was shown: left, right or tie."""
    if row["verdict"] == TIE:
        return TIE
    if mode == CANDIDATES:
        return LEFT if row["shown_left"] == "chosen" else RIGHT
    return LEFT if row["verdict"] == row["shown_left"] else RIGHT


class Answers:
    """The answers file of one session: the rows saved before it and those given in it.

    Not thread-safe by itself: the server calls it under its session lock. Each change rewrites
    the whole file (a few thousand rows at most: a person labels them one by one)."""

    def __init__(self, path: Path, mode: str, rows: list[dict], digest: str | None):
        self.path, self.mode, self.rows = path, mode, rows
        self.columns = columns_for(mode)
        self.ids = {row_pair_id(mode, r) for r in rows}
        self.session: list[str] = []  # ids answered in this session, oldest first (for undo)
        self._digest = digest  # the file as this session last saw it (None: no file yet)
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path, mode: str, *, inputs=()) -> Answers:
        """Check `path` as the answers file and load what an earlier session of `mode` saved
        there; a file that is not such an output of ours, unchanged, is refused."""
        if mode not in (CANDIDATES, COMPARISONS):
            raise ValueError(mode)
        # force=True: replacing our own earlier answers is the point (we resume them); anything
        # else, a user's file or one edited since, is still refused by the policy.
        check_output(path, inputs=inputs, force=True, what="--out", folder=False)
        target = Path(path)
        if not target.exists():
            return cls(target, mode, [], None)
        columns = columns_for(mode)
        try:
            rows = read_csv(target, columns, "answers")
        except UserError:
            raise UserError(
                f"--out {target} is an output of dpo-titles but not the answers of `annotate "
                f"--{mode}`: name another file"
            ) from None
        return cls(target, mode, rows, sha256_file(target))

    def add(self, pair: Pair, choice: str, labeller: str) -> dict:
        """Record `choice` on `pair` and save the file; the pair must not be answered yet."""
        if pair.id in self.ids:
            raise ValueError(f"pair {pair.id} is answered already")
        row = answer_row(self.mode, pair, choice, labeller, now())
        self._save([*self.rows, row])
        self.rows.append(row)
        self.ids.add(pair.id)
        self.session.append(pair.id)
        return row

    def undo(self) -> str | None:
        """Remove this session's last answer and save the file; returns its pair id (None when
        this session has answered nothing, or undone it all)."""
        if not self.session:
            return None
        key = self.session[-1]
        kept = [r for r in self.rows if row_pair_id(self.mode, r) != key]
        self._save(kept)
        self.rows = kept
        self.ids.discard(key)
        self.session.pop()
        return key

    def counts(self) -> dict[str, int]:
        """How many rows of the file have each verdict."""
        found = {v: 0 for v in verdicts_for(self.mode)}
        for row in self.rows:
            found[row["verdict"]] = found.get(row["verdict"], 0) + 1
        return found

    def sides(self) -> dict[str, int]:
        """How many rows of the file went left, right or tie, as shown."""
        found = {LEFT: 0, RIGHT: 0, TIE: 0}
        for row in self.rows:
            found[row_side(self.mode, row)] += 1
        return found

    def _save(self, rows: list[dict]) -> None:
        with self._lock:
            # Another session on the same file would be overwritten here; refuse instead.
            seen = sha256_file(self.path) if os.path.lexists(self.path) else None
            if seen != self._digest:
                raise UserError(
                    f"{self.path} was changed by someone else while this session ran: nothing "
                    "was saved; stop the other session and start this one again"
                )
            write_csv(self.path, rows, self.columns, force=True)
            self._digest = sha256_file(self.path)
