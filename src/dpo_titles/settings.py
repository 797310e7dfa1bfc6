"""Every stage's settings, defined once, and the ranges they must fall in.

`Sampling`, `Generation`, `Labelling`, `Split` and `Evaluation` (and `api_calls.CallPolicy`) hold
each setting's default, help line and check; the command line's flags (`cli.add_settings`), the
pipeline's `gen_*`, `sample_*`, `label_*`, `prepare_*` and `eval_*` parameters and the components
are derived from them (tests/test_settings.py asserts that every layer agrees).

Every setting is checked where its value is made (the dataclass of its concern, or the stage
that takes it), so the command line, the components and the pipeline's preflight refuse the same
values with the same words. An entry point renames the setting to what its user typed:
`--top-p` on the command line, `eval_samples_per_idea` in the pipeline.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields

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


# --------------------------------------------------------------------------------------------
# The settings of each stage, defined once. The command line's flags are made from these
# fields (`cli.add_settings`), the pipeline's parameters take their defaults from them
# (pipelines/pipeline.py), and the components take every setting from the pipeline (they have
# no defaults of their own); tests/test_settings.py checks that every layer agrees.
# --------------------------------------------------------------------------------------------


def setting(default, help: str, *, flag: str | None = None, choices=None):  # noqa: A002
    """A field of a settings dataclass: its default, its help line and, when the command line
    spells it otherwise than `--field-name`, its flag."""
    return field(default=default, metadata={"help": help, "flag": flag, "choices": choices})


def _backend_names(role: str) -> tuple[str, ...]:
    from .providers import GENERATORS, JUDGES

    return GENERATORS if role == "generate" else JUDGES


@dataclass(frozen=True)
class Sampling:
    """How titles are sampled: candidates in the generate stage, base and tuned titles in the
    evaluate stage."""

    temperature: float = setting(
        0.9,
        "sampling temperature; 0 is deterministic (greedy for one title, else a beam search "
        "returning the best beams)",
    )
    top_p: float = setting(0.95, "nucleus sampling probability mass")
    max_new_tokens: int = setting(40, "longest title, in tokens")

    def __post_init__(self):
        check_number("temperature", self.temperature, low=0, high=100, note="(0 means greedy)")
        if 0 < self.temperature < MIN_TEMPERATURE:
            # Below this, logits / temperature overflow and sampling breaks: say greedy instead.
            rule = f"must be 0 (greedy) or at least {MIN_TEMPERATURE:g}"
            raise SettingError("temperature", rule, self.temperature)
        check_number("top_p", self.top_p, low=0, high=1, low_open=True)
        # Titles are short; a larger cap only lets a typo run a batch for minutes.
        check_number("max_new_tokens", self.max_new_tokens, low=1, high=1024, integer=True)


# The least temperature that still samples: below it, use 0 (greedy).
MIN_TEMPERATURE = 0.01


@dataclass(frozen=True)
class Generation:
    """The generate stage: who writes the candidate titles, how many, from which seed."""

    provider: str = setting("hf", "back end that writes titles", choices="generate")
    model: str = setting(
        "",
        "the back end's model (hf: a local folder or owner/name hub id; API back ends: a model "
        "name); empty: the back end's default (the pipeline: the base model, for hf)",
    )
    titles_per_idea: int = setting(4, "titles per idea (2 to 100)", flag="--n")
    seed: int = setting(42, "random seed of the sampling")
    # bench/eval_generation.py: on two CPU cores 64 rows are over 4x faster than one prompt at a
    # time for the tiny model; a 0.5B model's KV cache for 64 rows is well under 1 GB on a GPU.
    batch_size: int = setting(64, "hf: sequences sampled at once")

    def __post_init__(self):
        _choose("provider", self.provider, _backend_names("generate"))
        check_number("titles_per_idea", self.titles_per_idea, low=2, high=100, integer=True)
        check_seed("seed", self.seed)
        check_number("batch_size", self.batch_size, low=1, integer=True)


@dataclass(frozen=True)
class Labelling:
    """The label stage: which judge compares the titles, and how."""

    judge: str = setting("rubric", "back end that compares titles", choices="judge")
    mode: str = setting(
        "listwise",
        "listwise: rank all of an idea's titles twice, in two orders; pairwise: each pair in "
        "both orders",
        choices=("listwise", "pairwise"),
    )
    model: str = setting("", "API judges: model name (empty: the back end's default)")

    def __post_init__(self):
        _choose("judge", self.judge, _backend_names("judge"))
        _choose("mode", self.mode, ("listwise", "pairwise"))


@dataclass(frozen=True)
class Agreement:
    """The judge measured against people (`agreement.py`): the seed of the pairs' order and of
    the bootstrap interval."""

    seed: int = setting(42, "random seed of the pairs' order and the bootstrap over ideas")

    def __post_init__(self):
        check_seed("seed", self.seed)


# The pairs the prepare stage keeps: every pair the judge decided (InstructGPT trains on every
# pair of a ranking), or those of each idea's best title (as Zephyr's UltraFeedback pairs take
# the best-rated answer as chosen), so that the chosen titles are the best the model wrote.
PAIRS = ("all", "best")


@dataclass(frozen=True)
class Split:
    """The prepare stage: which pairs train, and how the ideas are split between training and
    validation."""

    val_fraction: float = setting(0.2, "share of ideas held out for validation and evaluation")
    seed: int = setting(42, "random seed of the split")
    pairs: str = setting(
        "all",
        "which labelled pairs to train on: all of them, or best (each idea's best title, the one "
        "that won most, against each title it beat)",
        choices=PAIRS,
    )

    def __post_init__(self):
        check_number(
            "val_fraction", self.val_fraction, low=0, high=1, low_open=True, high_open=True
        )
        check_seed("seed", self.seed)
        _choose("pairs", self.pairs, PAIRS)


@dataclass(frozen=True)
class Evaluation:
    """The evaluate stage: who judges base against tuned, on how many titles per idea."""

    judge: str = setting(
        "rubric",
        "back end that compares base and tuned titles (best not the one that labelled)",
        choices="judge",
    )
    judge_model: str = setting("", "API judge: model name (empty: the back end's default)")
    samples_per_idea: int = setting(4, "titles per held-out idea from each model", flag="--k")
    seed: int = setting(1234, "random seed of the sampling (the same for both models)")
    reward_pairs: int = setting(
        512, "validation pairs scored for the DPO implicit reward accuracy (0: skip)"
    )

    def __post_init__(self):
        _choose("judge", self.judge, _backend_names("judge"))
        check_number("samples_per_idea", self.samples_per_idea, low=1, integer=True)
        check_seed("seed", self.seed)
        check_number("reward_pairs", self.reward_pairs, low=0, integer=True)


def _choose(name: str, value, choices) -> None:
    if value not in choices:
        raise SettingError(name, f"must be one of {', '.join(choices)}", value)


def defaults(cls) -> dict:
    """A settings dataclass's fields and their defaults."""
    return {f.name: f.default for f in fields(cls)}


def parse_assignments(items: list[str], *, flag: str = "--set", typed: bool = False) -> dict:
    """`NAME=VALUE` items (from `--set`) as a dict; with `typed`, each value read as a YAML
    scalar (numbers and booleans keep their type), else kept as text for the receiver to type.
    A malformed item is a one-line error naming it."""
    import yaml

    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag} takes NAME=VALUE, got {item!r}")
        value = value.strip()
        if typed:
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError:
                raise UserError(f"{flag} {key.strip()}: {value!r} is not a valid value") from None
        out[key.strip()] = value
    return out
