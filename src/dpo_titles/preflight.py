"""The pipeline's first task: every check that can fail a run, before anything costs money.

It validates the inputs (ideas, evaluation ideas, human preferences, within the input size
limit), the API keys and export destinations (`stages.validate`), every numeric setting of the
run with the same checks the stages make later, and resolves the training recipe with its
overrides into one JSON file that the train task reads. A setting out of range is named as the
pipeline names it (`titles_per_idea`, `eval_seed`, `train_seed`, ...).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from .settings import SettingError, check_number, named

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSettings:
    """The pipeline's numeric settings, by their pipeline names (the pipeline gives them all;
    their defaults live in the pipeline's signature)."""

    generator: str
    label_judge: str
    label_mode: str
    eval_judge: str
    titles_per_idea: int
    temperature: float
    top_p: float
    max_new_tokens: int
    seed: int
    val_fraction: float
    shards: int
    api_max_in_flight: int
    api_requests_per_minute: float
    eval_samples_per_idea: int
    eval_seed: int
    eval_reward_pairs: int
    accelerator_count: int
    max_input_mb: float

    @classmethod
    def from_parameters(cls, values: Mapping) -> RunSettings:
        """The settings out of the pipeline's parameters (by name; the others are ignored)."""
        return cls(**{f.name: values[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class TrainSettings:
    """The recipe and its overrides: the per-field pipeline parameters (empty keeps the
    recipe's value; `train_seed` is the recipe's `seed`) and `recipe_overrides` for the rest."""

    # The per-field pipeline parameters, in the pipeline's names.
    FIELDS = (
        "loss_type",
        "beta",
        "learning_rate",
        "lr_scheduler_type",
        "warmup_steps",
        "epochs",
        "batch_size",
        "gradient_accumulation_steps",
        "max_length",
        "train_seed",
        "gradient_checkpointing",
        "precompute_ref_log_probs",
        "lora_merge",
    )

    recipe: str
    recipe_overrides: dict = field(default_factory=dict)
    fields: dict = field(default_factory=dict)

    @classmethod
    def from_parameters(cls, values: Mapping) -> TrainSettings:
        """The recipe settings out of the pipeline's parameters (by name)."""
        return cls(
            recipe=values["recipe"],
            recipe_overrides=dict(values["recipe_overrides"] or {}),
            fields={name: values[name] for name in cls.FIELDS},
        )

    def overrides(self) -> dict:
        """The overrides the recipe gets: `recipe_overrides`, then every field that is set."""
        given = {("seed" if k == "train_seed" else k): v for k, v in self.fields.items()}
        return {**self.recipe_overrides, **{k: v for k, v in given.items() if v != ""}}


def check_settings(run: RunSettings) -> None:
    """Check every setting as the stage that uses it will: the back ends and the judge mode by
    name, the numbers by range."""
    from .api_calls import CallPolicy
    from .files import MAX_INPUT_MB
    from .label import MODES
    from .providers import GENERATORS, JUDGES, SamplingConfig
    from .shards import shard_plan
    from .stages import check_counts, check_val_fraction

    for name, value, choices in (
        ("generator", run.generator, GENERATORS),
        ("label_judge", run.label_judge, JUDGES),
        ("label_mode", run.label_mode, MODES),
        ("eval_judge", run.eval_judge, JUDGES),
    ):
        if value not in choices:
            raise SettingError(name, f"must be one of {', '.join(choices)}", value)
    check_number("max_input_mb", run.max_input_mb, low=0, high=MAX_INPUT_MB, low_open=True)

    generation = {
        "n": "titles_per_idea",
        "max_in_flight": "api_max_in_flight",
        "requests_per_minute": "api_requests_per_minute",
    }
    with named(generation):
        check_counts(n=run.titles_per_idea)
        SamplingConfig(run.temperature, run.top_p, run.max_new_tokens, run.seed)
        CallPolicy(
            max_in_flight=run.api_max_in_flight,
            requests_per_minute=run.api_requests_per_minute,
        )
    evaluation = {
        "k": "eval_samples_per_idea",
        "seed": "eval_seed",
        "reward_pairs": "eval_reward_pairs",
    }
    with named(evaluation):
        check_counts(k=run.eval_samples_per_idea, reward_pairs=run.eval_reward_pairs)
        SamplingConfig(run.temperature, run.top_p, run.max_new_tokens, run.eval_seed)
    check_val_fraction(run.val_fraction)
    shard_plan(run.shards)
    with named({"num_processes": "accelerator_count"}):
        check_counts(num_processes=run.accelerator_count)


def check_recipe(train: TrainSettings, *, only_if_readable: bool = False):
    """Load the recipe with its overrides, naming `train_seed` as the pipeline does; returns it.
    With `only_if_readable`, a recipe file that is not on this machine (a path on the cluster, a
    gs:// URI) is left to preflight and None is returned."""
    from .recipes import load_recipe
    from .stages import local_input

    looks_like_file = "/" in train.recipe or train.recipe.endswith((".yaml", ".yml", ".json"))
    if only_if_readable and looks_like_file and not Path(train.recipe).is_file():
        return None
    with named({"seed": "train_seed"}):
        return load_recipe(local_input(train.recipe), train.overrides())


def preflight(
    ideas_uri: str,
    ideas_out: str,
    recipe_out: str,
    run: RunSettings,
    train: TrainSettings,
    *,
    exports=None,
    eval_ideas_uri: str | None = None,
    human_preferences_uri: str | None = None,
) -> dict:
    """Check the whole run; write the validated ideas and the resolved recipe (JSON), the
    recipe last, so a run refused here leaves neither."""
    from .files import write_json
    from .stages import validate

    check_settings(run)
    recipe = check_recipe(train)
    figures = validate(
        ideas_uri,
        ideas_out,
        (run.generator, run.label_judge, run.eval_judge),
        exports,
        eval_ideas_path=eval_ideas_uri,
        human_preferences_path=human_preferences_uri,
    )
    write_json(recipe_out, recipe.as_dict())
    log.info("recipe %s: %s", recipe.name, json.dumps(recipe.as_dict()))
    return {**figures, "recipe": recipe.name}
