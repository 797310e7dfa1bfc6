"""Training recipes: YAML files in `recipes/`, chosen by name, each field overridable."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path

import yaml

from .errors import UserError
from .settings import SettingError, check_number, check_seed


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str = ""
    epochs: float = 2.0
    batch_size: int = 1
    gradient_accumulation_steps: int = 4
    learning_rate: float = 1e-6
    lr_scheduler_type: str = "linear"
    warmup_steps: int = 10
    beta: float = 0.1
    loss_type: str = "sigmoid"
    max_length: int = 256
    seed: int = 42
    # TRL 1.16 turns gradient checkpointing on by default; the tiny CPU recipe turns it off.
    gradient_checkpointing: bool = True
    precompute_ref_log_probs: bool = False
    use_lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    # LoRA only: merge the adapter into the base on save (a plain model folder) or keep the
    # adapter folder alone (small; loading it needs the base model and peft).
    lora_merge: bool = True
    logging_steps: int = 5
    eval_steps: int = 50
    # Checkpoint interval, used only when a checkpoint folder is given.
    save_steps: int = 50

    def __post_init__(self):
        check_number("epochs", self.epochs, low=0, high=1000, low_open=True)
        for name in ("batch_size", "gradient_accumulation_steps", "max_length", "lora_r"):
            check_number(name, getattr(self, name), low=1, integer=True)
        for name in ("logging_steps", "eval_steps", "save_steps"):
            check_number(name, getattr(self, name), low=1, integer=True)
        check_number("warmup_steps", self.warmup_steps, low=0, integer=True)
        check_seed("seed", self.seed)
        for name in ("learning_rate", "beta", "lora_alpha"):
            check_number(name, getattr(self, name), low=0, low_open=True)
        check_number("lora_dropout", self.lora_dropout, low=0, high=1, high_open=True)
        losses = [t.strip() for t in self.loss_type.split(",") if t.strip()]
        if not losses:
            raise SettingError("loss_type", "must name at least one loss", self.loss_type)
        unknown = [t for t in losses if t not in LOSS_TYPES]
        if unknown:
            raise SettingError("loss_type", f"takes {', '.join(LOSS_TYPES)}", unknown[0])
        schedules = scheduler_types()
        if self.lr_scheduler_type not in schedules:
            raise SettingError(
                "lr_scheduler_type", f"takes {', '.join(schedules)}", self.lr_scheduler_type
            )

    def as_dict(self) -> dict:
        """Every field, as plain values (the form `recipe.json` and checkpoints record)."""
        return asdict(self)


# The losses TRL 1.16's DPOTrainer knows (tests/test_recipes.py checks this against TRL).
LOSS_TYPES = (
    "sigmoid",
    "hinge",
    "ipo",
    "exo_pair",
    "nca_pair",
    "robust",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sft",
    "sigmoid_norm",
)
# A recipe is a few dozen lines; a larger file is not one.
MAX_RECIPE_BYTES = 256 * 1024


def scheduler_types() -> list[str]:
    """The learning-rate schedules transformers' Trainer takes."""
    from transformers.trainer_utils import SchedulerType

    return [s.value for s in SchedulerType]


class _PlainLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a recipe has no use for them, and nested aliases let a
    few hundred bytes expand to gigabytes."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "a recipe may not use aliases", mark)
        return super().compose_node(parent, index)


def available() -> list[str]:
    """The built-in recipes' names."""
    return sorted(
        p.name[:-5]
        for p in resources.files(__package__).joinpath("recipes").iterdir()
        if p.name.endswith(".yaml")
    )


def load_recipe(name_or_path: str, overrides: dict | None = None) -> Recipe:
    """Load a recipe by name (`seed`, `local`, ...) or from a YAML path, then apply overrides.

    Overrides whose value is None or "" are ignored, so unset pipeline parameters keep the
    recipe's value.
    """
    path = Path(name_or_path)
    # A path (a file of the user's, or the resolved recipe preflight hands to training) has a
    # folder or a YAML/JSON suffix; anything else is the name of a built-in recipe.
    if path.suffix in (".yaml", ".yml", ".json") or "/" in str(name_or_path):
        if not path.is_file():
            raise UserError(f"recipe file {path} does not exist")
        if path.stat().st_size > MAX_RECIPE_BYTES:
            raise UserError(f"recipe file {path} is over {MAX_RECIPE_BYTES // 1024} KiB")
        try:
            text, name = path.read_text(encoding="utf-8"), path.stem
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read recipe file {path}: {exc}") from exc
    else:
        res = resources.files(__package__).joinpath("recipes", f"{name_or_path}.yaml")
        if not res.is_file():
            raise UserError(
                f"unknown recipe {name_or_path!r}: choose one of {', '.join(available())} "
                "or give a .yaml path"
            )
        text, name = res.read_text(encoding="utf-8"), name_or_path
    try:
        values = yaml.load(text, Loader=_PlainLoader) or {}  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())[:200]
        raise UserError(f"recipe {name_or_path} is not valid YAML: {first}") from None
    if not isinstance(values, dict):
        raise UserError(f"recipe {name_or_path} must be a mapping of field: value")
    if not isinstance(overrides or {}, dict):
        raise UserError("recipe overrides must be a mapping of field: value")
    values.update({k: v for k, v in (overrides or {}).items() if v is not None and v != ""})
    odd = [k for k in values if not isinstance(k, str)]
    if odd:
        raise UserError(f"recipe {name_or_path}: field names are words, not {odd[0]!r}")
    known = {f.name: f.type for f in fields(Recipe)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UserError(f"recipe {name_or_path}: unknown field(s) {', '.join(unknown)}")
    values.setdefault("name", name)
    return Recipe(**_coerce(values))


def _coerce(values: dict) -> dict:
    """Pipeline parameters arrive as strings; give each field its declared type. A value of
    another kind (a list, a true for a number, a number for a name) is refused."""
    out = {}
    defaults = Recipe(name="x")
    for key, value in values.items():
        kind = type(getattr(defaults, key))
        try:
            out[key] = _as(kind, value)
        except (TypeError, ValueError) as exc:
            raise UserError(f"recipe field {key}={value!r} is not a valid {kind.__name__}") from exc
    return out


def _as(kind: type, value):
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ValueError(value)
    if kind is str:
        if not isinstance(value, str):
            raise TypeError(value)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(value)
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ValueError(value)
    return kind(value)
