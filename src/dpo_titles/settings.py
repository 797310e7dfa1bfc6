"""The ranges numeric settings must fall in, and the one error that names a setting out of range.

Every setting is checked where its value is made (the dataclass of its concern, or the stage
that takes it), so the command line, the components and the pipeline's preflight refuse the same
values with the same words. An entry point renames the setting to what its user typed:
`--top-p` on the command line, `eval_samples_per_idea` in the pipeline.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping

from .errors import UserError


class SettingError(UserError):
    """A setting outside its range: `setting` names it, `rule` says what it must be."""

    def __init__(self, setting: str, rule: str, value):
        self.setting, self.rule, self.value = setting, rule, value
        super().__init__(f"{setting} {rule}, got {value!r}")

    def renamed(self, name: str) -> SettingError:
        """The same error, naming the setting as an entry point's user knows it."""
        return SettingError(name, self.rule, self.value)


def check_number(
    name: str,
    value,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    note: str = "",
):
    """Return `value` if it is a finite number within the bounds, else raise SettingError.

    `low_open`/`high_open` exclude the bound itself; `note` is added to the rule, e.g.
    "(0 means greedy)".
    """
    rule = _rule(low, high, low_open, high_open, integer) + (f" {note}" if note else "")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SettingError(name, rule, value)
    if integer and not (isinstance(value, int) or float(value).is_integer()):
        raise SettingError(name, rule, value)
    if not math.isfinite(value):
        raise SettingError(name, rule, value)
    if low is not None and (value <= low if low_open else value < low):
        raise SettingError(name, rule, value)
    if high is not None and (value >= high if high_open else value > high):
        raise SettingError(name, rule, value)
    return value


def _shown(bound: float) -> str:
    return f"{int(bound):,}" if float(bound).is_integer() and abs(bound) < 1e15 else f"{bound:g}"


def _rule(low, high, low_open, high_open, integer) -> str:
    kind = "a whole number" if integer else "a number"
    low_s = None if low is None else f"{'more than' if low_open else 'at least'} {_shown(low)}"
    high_s = None if high is None else f"{'less than' if high_open else 'at most'} {_shown(high)}"
    if low_s and high_s:
        return f"must be {kind} {low_s} and {high_s}"
    return f"must be {kind} {low_s or high_s}" if (low_s or high_s) else f"must be {kind}"


# Seeds go to torch, numpy and the APIs' request bodies; 32-bit signed is what all of them take.
MAX_SEED = 2**31 - 1


def check_seed(name: str, value) -> int:
    """A seed: a whole number from 0 to MAX_SEED."""
    return check_number(name, value, low=0, high=MAX_SEED, integer=True)


@contextlib.contextmanager
def named(names: Mapping[str, str]) -> Iterator[None]:
    """Within the block, a SettingError names its setting as `names` maps it."""
    try:
        yield
    except SettingError as exc:
        if exc.setting in names:
            raise exc.renamed(names[exc.setting]) from None
        raise
