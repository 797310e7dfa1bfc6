"""The pipeline's first task: every check that can fail a run, before anything costs money.

It validates the inputs (ideas, evaluation ideas, human preferences, within the input size
limit), the API keys and export destinations (`stages.validate`), every setting of the run with
the same dataclasses the stages use, and resolves the training recipe with its overrides into
one JSON file that the train task reads.

The pipeline names a stage's setting `<prefix>_<field>` (`gen_titles_per_idea`,
`eval_samples_per_idea`, `api_max_in_flight`, ...), with the prefixes of `PIPELINE_GROUPS`; the
run's one `seed` feeds the generate stage and the split. A setting out of range is named as the
pipeline names it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from .api_calls import CallPolicy
from .settings import (
    Evaluation,
    Generation,
    Labelling,
    Sampling,
    SettingError,
    Split,
    check_number,
    named,
)

log = logging.getLogger(__name__)

# Each stage's settings and the prefix of their pipeline parameters.
PIPELINE_GROUPS = (
    ("gen", Generation),
    ("sample", Sampling),
    ("label", Labelling),
    ("api", CallPolicy),
    ("prepare", Split),
    ("eval", Evaluation),
)
# Parameters that do not follow the rule: the run's seed feeds two stages.
SHARED = {("gen", "seed"): "seed", ("prepare", "seed"): "seed"}


def parameter_name(prefix: str, name: str) -> str:
    """The pipeline parameter of a stage's setting."""
    return SHARED.get((prefix, name), f"{prefix}_{name}")


def stage_settings(values: Mapping) -> dict:
    """Each stage's settings (by prefix) from the pipeline's parameters: those the pipeline has,
    the rest at their defaults; a setting out of range is named as the pipeline names it."""
    out = {}
    for prefix, cls in PIPELINE_GROUPS:
        names = {
            f.name: parameter_name(prefix, f.name) for f in fields(cls) if "help" in f.metadata
        }
        given = {name: values[param] for name, param in names.items() if param in values}
        with named(names):
            out[prefix] = cls(**given)
    return out


def check_settings(values: Mapping) -> dict:
    """Check every setting of a run as the stages that use it will; returns the stages'
    settings by prefix."""
    from .files import MAX_INPUT_MB
    from .shards import shard_plan

    settings = stage_settings(values)
    shard_plan(values["shards"])
    check_number("gpu_count", values["gpu_count"], low=1, integer=True)
    if "train_backend" in values:
        from .trainjob import BACKENDS

        if values["train_backend"] not in BACKENDS:
            raise SettingError(
                "train_backend", f"must be one of {', '.join(BACKENDS)}", values["train_backend"]
            )
        check_number("gpu_num_nodes", values["gpu_num_nodes"], low=1, integer=True)
        check_number("train_timeout_minutes", values["train_timeout_minutes"], low=1, integer=True)
    check_number("max_input_mb", values["max_input_mb"], low=0, high=MAX_INPUT_MB, low_open=True)
    return settings


@dataclass(frozen=True)
class TrainSettings:
    """The recipe and its overrides: the pipeline's `train_<field>` parameters (empty keeps the
    recipe's value) and `train_overrides` for any other field."""

    # The recipe fields with a pipeline parameter of their own (`train_` + the name, `.` as `_`).
    FIELDS = (
        "loss_type",
        "beta",
        "learning_rate",
        "lr_scheduler_type",
        "warmup_steps",
        "num_train_epochs",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "max_length",
        "seed",
        "activation_checkpointing",
        "precompute_ref_log_probs",
        "lora.merge",
    )

    recipe: str
    overrides: dict = field(default_factory=dict)
    fields: dict = field(default_factory=dict)

    @staticmethod
    def parameter(name: str) -> str:
        """The pipeline parameter of a recipe field."""
        return "train_" + name.replace(".", "_")

    @classmethod
    def from_parameters(cls, values: Mapping) -> TrainSettings:
        """The recipe settings out of the pipeline's parameters (by name)."""
        return cls(
            recipe=values["train_recipe"],
            overrides=dict(values["train_overrides"] or {}),
            fields={name: values[cls.parameter(name)] for name in cls.FIELDS},
        )

    def all_overrides(self) -> dict:
        """What the recipe gets: `train_overrides`, then every field parameter that is set."""
        return {**self.overrides, **{k: v for k, v in self.fields.items() if v != ""}}


def check_recipe(train: TrainSettings, *, only_if_readable: bool = False):
    """Load the recipe with its overrides, naming a field as the pipeline does; returns it.
    With `only_if_readable`, a recipe file that is not on this machine (a path on the cluster, a
    gs:// URI) is left to preflight and None is returned."""
    from .recipes import load_recipe
    from .storage import local_input

    looks_like_file = "/" in train.recipe or train.recipe.endswith((".yaml", ".yml", ".json"))
    if only_if_readable and looks_like_file and not Path(train.recipe).is_file():
        return None
    with named({name: train.parameter(name) for name in train.FIELDS}):
        return load_recipe(local_input(train.recipe), train.all_overrides())


def preflight(values: Mapping, ideas_out: str, recipe_out: str) -> dict:
    """Check the whole run from the pipeline's parameters (`values`, by their names); write
    the validated ideas and the resolved recipe (JSON), the recipe last, so a run refused here
    leaves neither."""
    from .exports import Exports
    from .files import write_json
    from .stages import validate

    settings = check_settings(values)
    recipe = check_recipe(TrainSettings.from_parameters(values))
    exports = Exports(
        values["export_dataset_uri"],
        values["export_model_uri"],
        values["export_hub_dataset_repo"],
        values["export_hub_model_repo"],
    )
    figures = validate(
        values["ideas_uri"],
        ideas_out,
        (settings["gen"].provider, settings["label"].judge, settings["eval"].judge),
        exports,
        eval_ideas_path=values["eval_ideas_uri"] or None,
        human_preferences_path=values["prepare_human_preferences_uri"] or None,
    )
    write_json(recipe_out, recipe.as_dict())
    log.info("recipe %s: %s", recipe.name, json.dumps(recipe.as_dict()))
    return {**figures, "recipe": recipe.name}
