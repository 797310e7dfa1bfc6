"""Errors a user can cause, and how they reach the terminal."""

from __future__ import annotations

import contextlib
import sys


class UserError(Exception):
    """A problem the user can fix (bad input, missing file, wrong flag).

    Its message is one line that says what to fix; entry points print it without a traceback
    and exit non-zero.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


@contextlib.contextmanager
def exit_on_user_error(stage: str):
    """Turn a UserError into one line on stderr and exit status 2, for entry points where a
    traceback would bury the message (KFP components, scripts)."""
    try:
        yield
    except UserError as exc:
        print(f"dpo-titles {stage}: error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
