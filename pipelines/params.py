"""Pipeline parameters from the command line, shared by run-local and submit."""


def parse_sets(items: list[str]) -> dict:
    """`--set NAME=VALUE` pairs; values are YAML scalars, so numbers and booleans keep their
    type (settings.parse_assignments, the command line's parser too)."""
    from dpo_titles.settings import parse_assignments

    return parse_assignments(items, typed=True)


def check_parameters(params: dict) -> dict:
    """The parameters as the pipeline types them ("5e-3" for a Float is 0.005), after refusing,
    before a run starts, a parameter the pipeline does not have, a value not of its type, and
    every setting out of range: the checks the preflight task makes, named as the pipeline
    names them. A built-in recipe (or a recipe file here) is loaded with its overrides too.
    Raises `UserError` with one line."""
    from dpo_titles.errors import UserError
    from dpo_titles.preflight import TrainSettings, check_recipe, check_settings
    from pipelines.pipeline import dpo_titles_pipeline

    inputs = dpo_titles_pipeline.component_spec.inputs
    params = {_current_name(name): value for name, value in params.items()}
    unknown = sorted(set(params) - set(inputs))
    if unknown:
        raise UserError(f"the pipeline has no parameter {', '.join(unknown)}: check the name")
    typed = {name: _typed(name, value, inputs[name].type) for name, value in params.items()}
    values = {name: typed.get(name, spec.default) for name, spec in inputs.items()}
    check_settings(values)
    check_recipe(TrainSettings.from_parameters(values), only_if_readable=True)
    return typed


# Parameter names of before this release, and what they are now (grouped by stage).
OLD_NAMES = {
    "generator": "gen_provider",
    "generator_model": "gen_model",
    "titles_per_idea": "gen_titles_per_idea",
    "temperature": "sample_temperature",
    "top_p": "sample_top_p",
    "max_new_tokens": "sample_max_new_tokens",
    "label_judge_model": "label_model",
    "response_cache": "api_response_cache",
    "val_fraction": "prepare_val_fraction",
    "human_preferences_uri": "prepare_human_preferences_uri",
    "recipe": "train_recipe",
    "recipe_overrides": "train_overrides",
    "loss_type": "train_loss_type",
    "beta": "train_beta",
    "learning_rate": "train_learning_rate",
    "lr_scheduler_type": "train_lr_scheduler_type",
    "warmup_steps": "train_warmup_steps",
    "epochs": "train_num_train_epochs",
    "batch_size": "train_per_device_train_batch_size",
    "gradient_accumulation_steps": "train_gradient_accumulation_steps",
    "max_length": "train_max_length",
    "gradient_checkpointing": "train_activation_checkpointing",
    "precompute_ref_log_probs": "train_precompute_ref_log_probs",
    "lora_merge": "train_lora_merge",
    "checkpoint_dir": "train_checkpoint_dir",
    "accelerator_type": "gpu_type",
    "accelerator_count": "gpu_count",
    "hub_dataset_repo": "export_hub_dataset_repo",
    "hub_model_repo": "export_hub_model_repo",
    "hub_private": "export_hub_private",
}


def _current_name(name: str) -> str:
    if name in OLD_NAMES:
        import logging

        logging.getLogger(__name__).warning(
            "pipeline parameter %s is now %s; the old name goes in the next release",
            name,
            OLD_NAMES[name],
        )
        return OLD_NAMES[name]
    return name


def _typed(name: str, value, kind: str):
    from dpo_titles.errors import UserError

    def wrong():
        return UserError(f"{name} must be {_KINDS[kind]}, got {value!r}")

    if kind in ("Float", "Integer"):
        if isinstance(value, bool):
            raise wrong()
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise wrong() from None
        if kind == "Integer":
            if not number.is_integer():
                raise wrong()
            return int(number)
        return number
    if kind == "Boolean":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise wrong()
    if kind == "String":
        if isinstance(value, dict | list):
            raise wrong()
        return "" if value is None else str(value)
    if kind == "Dict":
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise wrong()
        return value
    if kind == "List" and not isinstance(value, list):
        raise wrong()
    return value


_KINDS = {
    "Float": "a number",
    "Integer": "a whole number",
    "Boolean": "true or false",
    "String": "text",
    "Dict": "a mapping of name: value ({key: value})",
    "List": "a list ([...])",
}
