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
