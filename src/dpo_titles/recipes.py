"""Training recipes: TRL's `DPOConfig`, as YAML, parsed by transformers' own argument parser.

A recipe file's keys are `DPOConfig` field names (`num_train_epochs`, `learning_rate`, `beta`,
`loss_type`, ...; any field TRL has works, with no code here), plus a small block of our own:

- `description`: one line shown in logs and the model card;
- `lora`: LoRA through PEFT (`r`, `alpha`, `dropout`, `merge`: merge the adapter into the base
  on save, or write the adapter alone); absent or null for a full fine-tune.

The values go through `transformers.HfArgumentParser` as command-line arguments would, so every
field is typed and checked by TRL's own definition (a misspelt field or a bad value is a one-line
error). The fields that describe the machine and the run, not the recipe (`output_dir`, `bf16`,
`use_cpu`, `report_to`, the save and evaluation strategies, ...) are the training stage's
(`Recipe.dpo_config`); a recipe may not set them.

Overrides (`--set NAME=VALUE`, the pipeline's `train_*` parameters and `train_overrides`) use the
same names; `lora.r=32` reaches the LoRA block. The names of before (`epochs`, `batch_size`,
`gradient_checkpointing`, `use_lora`, `lora_r`, ...) and the recipe name `seed` still work for
this release, with a warning.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path

import yaml

from .errors import UserError
from .settings import SettingError, check_number, check_seed

log = logging.getLogger(__name__)

# The losses TRL 1.16's DPOTrainer knows (tests/test_recipes.py checks this against TRL): TRL
# checks them only once training starts, after the model is loaded.
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
# What the training stage decides from the machine and the run (Recipe.dpo_config).
RUNTIME_FIELDS = frozenset(
    {
        "output_dir",
        "bf16",
        "fp16",
        "use_cpu",
        "report_to",
        "eval_strategy",
        "save_strategy",
        "save_total_limit",
        "trust_remote_code",
        "dataloader_num_workers",
        "disable_tqdm",
        "per_device_eval_batch_size",
        "resume_from_checkpoint",
    }
)
# Names of before this release -> the DPOConfig field (or lora.<key>) they became.
OLD_NAMES = {
    "epochs": "num_train_epochs",
    "batch_size": "per_device_train_batch_size",
    "gradient_checkpointing": "activation_checkpointing",
    "lora_r": "lora.r",
    "lora_alpha": "lora.alpha",
    "lora_dropout": "lora.dropout",
    "lora_merge": "lora.merge",
}
OLD_RECIPES = {"seed": "original"}
# TRL's own default, spelled with transformers 5's name: left unset, TRL sets the old name and
# transformers warns at every DPOConfig.
TRL_DEFAULTS = {"activation_checkpointing": True}


@dataclass(frozen=True)
class Lora:
    """The LoRA block of a recipe: an adapter on every linear layer, so TRL's reference model
    is the base with the adapter switched off."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    merge: bool = True  # merge into the base on save; false writes the adapter alone

    def __post_init__(self):
        check_number("lora.r", self.r, low=1, integer=True)
        check_number("lora.alpha", self.alpha, low=1, integer=True)
        check_number("lora.dropout", self.dropout, low=0, high=1, high_open=True)
        if not isinstance(self.merge, bool):
            raise SettingError("lora.merge", "must be true or false", self.merge)


@dataclass(frozen=True)
class Recipe:
    """A checked recipe: its DPOConfig fields (as the recipe sets them), and our own block."""

    name: str
    description: str = ""
    config: dict = field(default_factory=dict)
    lora: Lora | None = None

    @property
    def use_lora(self) -> bool:
        return self.lora is not None

    def dpo_config(self, **runtime):
        """The `DPOConfig` training uses (and the bench measures): the recipe's fields, then the
        run's (`output_dir`, `bf16`, `use_cpu`, ...)."""
        from trl import DPOConfig

        clash = sorted(set(runtime) - RUNTIME_FIELDS)
        if clash:
            raise ValueError(f"not runtime fields: {clash}")
        return DPOConfig(**{**TRL_DEFAULTS, **self.config, **runtime})

    def value(self, name: str):
        """A DPOConfig field's value for this recipe: set by it, or TRL's default."""
        if name in self.config:
            return self.config[name]
        return _defaults()[name]

    def as_dict(self) -> dict:
        """The recipe as it loads again (`load_recipe` of its JSON): the form `recipe.json`
        and checkpoints record."""
        lora = (
            None
            if self.lora is None
            else {f.name: getattr(self.lora, f.name) for f in fields(Lora)}
        )
        return {"name": self.name, "description": self.description, "lora": lora, **self.config}


def _defaults() -> dict:
    """DPOConfig's defaults, as a recipe sees them."""
    global _DEFAULTS
    if _DEFAULTS is None:
        _DEFAULTS = _parse_config({}, "defaults")[1].to_dict()
    return _DEFAULTS


_DEFAULTS: dict | None = None


def available() -> list[str]:
    """The built-in recipes' names."""
    return sorted(
        p.name[:-5]
        for p in resources.files(__package__).joinpath("recipes").iterdir()
        if p.name.endswith(".yaml")
    )


class _PlainLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a recipe has no use for them, and nested aliases let a
    few hundred bytes expand to gigabytes."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "a recipe may not use aliases", mark)
        return super().compose_node(parent, index)


def _read(name_or_path: str) -> tuple[dict, str]:
    """The recipe's values and its name, from a built-in name or a YAML/JSON file."""
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
        if name_or_path in OLD_RECIPES:
            new = OLD_RECIPES[name_or_path]
            log.warning(
                "recipe %r is now called %r; the old name goes in the next release",
                name_or_path,
                new,
            )
            name_or_path = new
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
    return values, name


def load_recipe(name_or_path: str, overrides: dict | None = None) -> Recipe:
    """Load a recipe by name (`original`, `lora`, `local`) or from a YAML/JSON path, then apply
    overrides. Overrides whose value is None or "" are ignored, so unset pipeline parameters
    keep the recipe's value."""
    values, name = _read(name_or_path)
    if not isinstance(overrides or {}, dict):
        raise UserError("recipe overrides must be a mapping of field: value")
    given = {k: v for k, v in (overrides or {}).items() if v is not None and v != ""}
    odd = [k for k in (*values, *given) if not isinstance(k, str)]
    if odd:
        raise UserError(f"recipe {name_or_path}: field names are words, not {odd[0]!r}")
    recipe_name = values.pop("name", name)
    description = values.pop("description", "")
    if not isinstance(description, str) or not isinstance(recipe_name, str):
        raise UserError(f"recipe {name_or_path}: name and description are text")
    lora = values.pop("lora", None)
    if lora is not None and not isinstance(lora, dict):
        raise UserError(f"recipe {name_or_path}: lora is a block of r, alpha, dropout, merge")
    lora = dict(lora) if lora is not None else None
    config: dict = {}
    for source in (values, given):
        for key, value in source.items():
            key = _current_name(key, value)
            if key == "use_lora":
                lora = (lora or {}) if _truth(value, key) else None
            elif key.startswith("lora."):
                lora = lora if lora is not None else {}
                lora[key[5:]] = value
            elif key in RUNTIME_FIELDS:
                raise UserError(
                    f"recipe field {key} is the training stage's to set (from the machine and "
                    "the run), not a recipe's"
                )
            else:
                config[key] = value
    chosen, _ = _parse_config(config, name_or_path)
    return Recipe(recipe_name, description, _plain(chosen), _lora(lora, name_or_path))


def _current_name(key: str, value) -> str:
    if key in OLD_NAMES:
        log.warning(
            "recipe field %r is now %r (DPOConfig's name); the old name goes in the next release",
            key,
            OLD_NAMES[key],
        )
        return OLD_NAMES[key]
    return key


def _truth(value, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise UserError(f"recipe field {key}={value!r} is not true or false")


def _lora(values: dict | None, where: str) -> Lora | None:
    if values is None:
        return None
    unknown = sorted(set(values) - {f.name for f in fields(Lora)})
    if unknown:
        raise UserError(f"recipe {where}: unknown lora field(s) {', '.join(unknown)}")
    typed = {}
    for key, value in values.items():
        if key == "merge":
            typed[key] = _truth(value, "lora.merge")
            continue
        try:
            if isinstance(value, bool):
                raise ValueError(value)
            typed[key] = float(value) if key == "dropout" else int(value)
        except (TypeError, ValueError):
            raise UserError(f"recipe field lora.{key}={value!r} is not a number") from None
    return Lora(**typed)


def _tokens(config: dict) -> list[str]:
    """The recipe's fields as command-line arguments, as HfArgumentParser reads them."""
    out = []
    for key, value in config.items():
        out.append(f"--{key}")
        if isinstance(value, list | tuple):
            out += [str(v) for v in value]
        elif key == "loss_type" and isinstance(value, str):
            out += [t.strip() for t in value.split(",") if t.strip()]
        elif isinstance(value, dict):
            out[-1] += "=" + json.dumps(value)
        elif isinstance(value, bool):
            out[-1] += "=" + ("true" if value else "false")
        else:
            # `--name=value`, so that a negative number is not read as an option.
            out[-1] += f"={value}"
    return out


def _parse_config(config: dict, where: str) -> tuple[dict, object]:
    """The recipe's fields typed by transformers' own argument parser (as TRL defines each), and
    the DPOConfig they make (which checks them together). Errors are one line."""
    import argparse

    from transformers import HfArgumentParser
    from trl import DPOConfig

    for key, value in config.items():
        if isinstance(value, dict) and key != "model_init_kwargs":
            raise UserError(f"recipe field {key}={value!r} is not a valid value")
    given = {**TRL_DEFAULTS, **config}
    parser = HfArgumentParser(DPOConfig, exit_on_error=False, allow_abbrev=False)
    # The machine's fields are the run's (dpo_config); these only let the check run anywhere.
    machine = ["--bf16", "false", "--use_cpu", "true", "--output_dir", "unused"]
    try:
        namespace, unknown = parser.parse_known_args(args=[*_tokens(given), *machine])
    except argparse.ArgumentError as exc:
        raise UserError(f"recipe {where}: {' '.join(str(exc).split())}") from None
    if unknown:
        names = [u[2:] for u in unknown if u.startswith("--")]
        raise UserError(
            f"recipe {where}: unknown field(s) {', '.join(names or unknown)} (recipe fields are "
            "DPOConfig's, plus description and lora)"
        )
    typed = {k: getattr(namespace, k) for k in config}
    # Our ranges first, named as the recipe names them; then TRL's own checks, together.
    _check({k: getattr(namespace, k) for k in _CHECKED})
    try:
        made = DPOConfig(**vars(namespace))
    except (ValueError, TypeError) as exc:
        raise UserError(f"recipe {where}: {' '.join(str(exc).split())[:300]}") from None
    return typed, made


# DPOConfig fields whose range matters before a GPU is paid for, checked as training needs them.
_CHECKED = (
    "num_train_epochs",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "learning_rate",
    "warmup_steps",
    "beta",
    "loss_type",
    "max_length",
    "seed",
    "logging_steps",
    "eval_steps",
    "save_steps",
)


def _check(values: dict) -> None:
    check_number("num_train_epochs", values["num_train_epochs"], low=0, high=1000, low_open=True)
    for name in ("per_device_train_batch_size", "gradient_accumulation_steps"):
        check_number(name, values[name], low=1, integer=True)
    check_number("learning_rate", values["learning_rate"], low=0, low_open=True)
    check_number("beta", values["beta"], low=0, low_open=True)
    check_number("warmup_steps", values["warmup_steps"], low=0)
    check_seed("seed", values["seed"])
    if values["max_length"] is not None:
        check_number("max_length", values["max_length"], low=1, integer=True)
    for name in ("logging_steps", "eval_steps", "save_steps"):
        if values[name] is not None:
            check_number(name, values[name], low=0, low_open=True)
    losses = values["loss_type"]
    losses = [losses] if isinstance(losses, str) else list(losses)
    unknown = [t for t in losses if t not in LOSS_TYPES]
    if not losses or unknown:
        rule = f"takes one or more of {', '.join(LOSS_TYPES)}"
        raise SettingError("loss_type", rule, unknown[0] if unknown else losses)


def _plain(config: dict) -> dict:
    """JSON-able values (enums as their names)."""
    out = {}
    for key, value in config.items():
        out[key] = getattr(value, "value", value)
        if isinstance(out[key], tuple):
            out[key] = list(out[key])
    return out


def dpo_field_names() -> list[str]:
    """Every DPOConfig field a recipe may set."""
    from trl import DPOConfig

    return sorted(f.name for f in fields(DPOConfig) if f.init and f.name not in RUNTIME_FIELDS)
