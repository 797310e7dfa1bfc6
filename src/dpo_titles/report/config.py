"""What a run actually used, read back from its artifacts rather than echoed from parameters:
the generator's settings (from the candidates), the split, the recipe, the evaluation's."""

from __future__ import annotations

from pathlib import Path

# The evaluation figures that are settings, shown in the configuration table.
_EVALUATION_KEYS = (
    "eval_judge",
    "label_judge",
    "eval_ideas_source",
    "samples_per_idea",
    "eval_temperature",
    "eval_top_p",
    "eval_seed",
)


def run_configuration(
    metrics: dict, model_dir: str, candidates_path: str | None, dataset_dir: str | None
) -> dict:
    """The configuration table of a report: generator settings, split, recipe, evaluation."""
    from ..dataset import load_split
    from ..files import read_csv, read_json
    from ..train import RECIPE_FILE

    config: dict = {}
    if candidates_path and Path(candidates_path).is_file():
        rows = read_csv(candidates_path, ["idea", "title"], "candidates")
        if rows:
            first = rows[0]
            for key in ("provider", "model", "temperature", "top_p", "max_new_tokens", "seed"):
                if key in first:
                    config[f"generator_{key}"] = first[key]
            config["candidates"] = len(rows)
    if dataset_dir and (Path(dataset_dir) / "split.json").is_file():
        split = load_split(dataset_dir)
        config["split_seed"] = split.get("seed")
        config["val_fraction"] = split.get("val_fraction")
        config["train_ideas"] = len(split.get("train_ideas", []))
        config["validation_ideas"] = len(split.get("validation_ideas", []))
    recipe_path = Path(model_dir) / RECIPE_FILE
    if recipe_path.is_file():
        trained = read_json(recipe_path, "recipe", dict)
        config["base_model"] = trained.get("base_model")
        config["recipe"] = trained.get("recipe", {})
    config.update({k: metrics[k] for k in _EVALUATION_KEYS if k in metrics})
    return config
