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


class NothingMade(Exception):
    """A stage ran but produced nothing usable (no candidates, no preferences, every comparison
    failed). Its message is one line that gives the most common causes; exit status 1."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def exit_status(exc: BaseException) -> int:
    """2 for input the user can fix, 1 for a stage that made nothing usable."""
    return 2 if isinstance(exc, UserError) else 1


def one_line(stage: str, exc: BaseException) -> str:
    """How an entry point reports a UserError or NothingMade: one line, no traceback."""
    kind = "error" if isinstance(exc, UserError) else "failed"
    return f"dpo-titles {stage}: {kind}: {exc}"


@contextlib.contextmanager
def exit_on_user_error(stage: str):
    """Turn a UserError (status 2) or NothingMade (status 1) into one line on stderr, for entry
    points where a traceback would bury the message (KFP components, scripts). It first says
    where the stage runs: the user and the Python (in a pipeline task: the image's)."""
    import os
    import platform

    from . import __version__

    print(
        f"dpo-titles {stage}: running as uid {os.getuid()}, Python {platform.python_version()} "
        f"({sys.executable}), dpo-titles {__version__}",
        file=sys.stderr,
        flush=True,
    )
    try:
        yield
    except (UserError, NothingMade) as exc:
        print(one_line(stage, exc), file=sys.stderr, flush=True)
        raise SystemExit(exit_status(exc)) from None
