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


def check_parameters(params: dict) -> dict:
    """The parameters as the pipeline types them ("5e-3" for a Float is 0.005), after refusing,
    before a run starts, a parameter the pipeline does not have, a value not of its type, and
    every setting out of range: the checks the preflight task makes, named as the pipeline
    names them. A built-in recipe (or a recipe file here) is loaded with its overrides too.
    Raises `UserError` with one line."""
    from dpo_titles.errors import UserError
    from dpo_titles.preflight import RunSettings, TrainSettings, check_recipe, check_settings
    from pipelines.pipeline import dpo_titles_pipeline

    inputs = dpo_titles_pipeline.component_spec.inputs
    unknown = sorted(set(params) - set(inputs))
    if unknown:
        raise UserError(f"the pipeline has no parameter {', '.join(unknown)}: check the name")
    typed = {name: _typed(name, value, inputs[name].type) for name, value in params.items()}
    values = {name: typed.get(name, spec.default) for name, spec in inputs.items()}
    check_settings(RunSettings.from_parameters(values))
    check_recipe(TrainSettings.from_parameters(values), only_if_readable=True)
    return typed


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
