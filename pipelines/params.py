"""Pipeline parameters from the command line, shared by run-local and submit."""

import yaml


def parse_sets(items: list[str]) -> dict:
    """`--set NAME=VALUE` pairs; values are YAML scalars, so numbers and booleans keep their
    type. Raises ValueError naming the first malformed item."""
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set takes NAME=VALUE, got {item!r}")
        params[key] = yaml.safe_load(value)
    return params


def check_parameters(params: dict) -> None:
    """Refuse, before a run starts, a parameter the pipeline does not have and every numeric
    setting out of range: the checks the preflight task makes, named as the pipeline names
    them. A built-in recipe (or a recipe file here) is loaded with its overrides too. Raises
    `UserError` with one line."""
    from dpo_titles.errors import UserError
    from dpo_titles.preflight import RunSettings, TrainSettings, check_recipe, check_settings
    from pipelines.pipeline import dpo_titles_pipeline

    inputs = dpo_titles_pipeline.component_spec.inputs
    unknown = sorted(set(params) - set(inputs))
    if unknown:
        raise UserError(f"the pipeline has no parameter {', '.join(unknown)}: check the name")
    values = {name: params.get(name, spec.default) for name, spec in inputs.items()}
    check_settings(RunSettings.from_parameters(values))
    check_recipe(TrainSettings.from_parameters(values), only_if_readable=True)
