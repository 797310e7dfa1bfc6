"""Each component's Python function, called as KFP calls it, with real artifact folders."""

import csv
import json

import pytest
from kfp.dsl import HTML, Artifact, Dataset, Metrics, Model

from components.agreement import measure_agreement
from components.evaluate import evaluate_models
from components.generate import generate_titles
from components.label import label_preferences
from components.preflight import preflight
from components.prepare import prepare_dataset
from components.report import write_report
from components.train import train_dpo
from tests.conftest import pipeline_arguments, preflight_arguments


def art(cls, tmp_path, name):
    return cls(name=name, uri=str(tmp_path / name), metadata={})


def test_components_chain(tmp_path, tiny_model, ideas_csv):
    m = str(tiny_model)
    ideas, recipe = art(Dataset, tmp_path, "ideas"), art(Artifact, tmp_path, "recipe")
    preflight.python_func(
        **preflight_arguments(
            ideas_uri=str(ideas_csv),
            ideas=ideas,
            recipe_file=recipe,
            train_recipe="local",
            train_overrides={"num_train_epochs": 1},
        )
    )
    cands, gen_m = art(Dataset, tmp_path, "candidates"), art(Metrics, tmp_path, "gen_metrics")
    generate_titles.python_func(
        **pipeline_arguments(
            "generate-titles",
            ideas=ideas,
            candidates=cands,
            metrics=gen_m,
            default_model=m,
            temperature=1.2,
            max_new_tokens=24,
            seed=1,
            cache_root="",
            shard_index=0,
            shard_count=1,
        )
    )
    assert gen_m.metadata["requested"] == 48.0
    prefs, lab_m = art(Dataset, tmp_path, "prefs"), art(Metrics, tmp_path, "lab_metrics")
    label_preferences.python_func(
        **pipeline_arguments(
            "label-preferences", candidates=cands, preferences=prefs, metrics=lab_m, cache_root=""
        )
    )
    assert lab_m.metadata["preferences"] > 0
    ds, prep_m = art(Dataset, tmp_path, "dataset"), art(Metrics, tmp_path, "prep_metrics")
    prepare_dataset.python_func(
        **pipeline_arguments(
            "prepare-dataset", preferences=prefs, dataset=ds, metrics=prep_m, val_fraction=0.25
        )
    )
    assert prep_m.metadata["validation_ideas"] == 3.0
    model, train_m = art(Model, tmp_path, "model"), art(Metrics, tmp_path, "train_metrics")
    train_dpo.python_func(
        **pipeline_arguments(
            "train-dpo",
            dataset=ds,
            recipe_file=recipe,
            model=model,
            metrics=train_m,
            base_model=m,
            run_id="",
            cache_root="",
        )
    )
    assert (tmp_path / "model" / "config.json").is_file()
    assert model.metadata["recipe"] == "local" and "train_loss" in train_m.metadata
    ev, ev_m = art(Artifact, tmp_path, "evaluation"), art(Metrics, tmp_path, "eval_metrics")
    evaluate_models.python_func(
        **pipeline_arguments(
            "evaluate-models",
            dataset=ds,
            tuned_model=model,
            evaluation=ev,
            metrics=ev_m,
            base_model=m,
            samples_per_idea=2,
            cache_root="",
        )
    )
    assert ev_m.metadata["n_comparisons"] == 6.0
    assert json.loads((tmp_path / "evaluation" / "metrics.json").read_text())["n_comparisons"] == 6
    # People labelled a few of the judge's pairs (and disagreed once): the judge is measured.
    with open(tmp_path / "prefs", newline="", encoding="utf-8") as fh:
        judged = list(csv.DictReader(fh))[:6]
    judged[0]["chosen"], judged[0]["rejected"] = judged[0]["rejected"], judged[0]["chosen"]
    with open(tmp_path / "human.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(
            fh, fieldnames=["idea", "chosen", "rejected"], extrasaction="ignore"
        )
        writer.writeheader()
        writer.writerows(judged)
    agreed, agree_m = art(Artifact, tmp_path, "agreement"), art(Metrics, tmp_path, "agree_m")
    measure_agreement.python_func(
        **pipeline_arguments(
            "measure-agreement",
            agreement=agreed,
            metrics=agree_m,
            human_preferences_uri=str(tmp_path / "human.csv"),
            cache_root="",
        )
    )
    assert agree_m.metadata["pairs_compared"] == 6.0
    assert agree_m.metadata["agreement"] == pytest.approx(5 / 6, abs=1e-4)
    report = art(HTML, tmp_path, "report.html")
    write_report.python_func(
        evaluation=ev,
        tuned_model=model,
        candidates=cands,
        dataset=ds,
        agreement=agreed,
        report=report,
        config={"note": "component test"},
    )
    html = (tmp_path / "report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "agreement with people" in html and "83.3%" in html
    # The configuration is read back from the artifacts, not echoed from parameters.
    for shown in (m, "generator_temperature", "1.2", "split_seed", "component test"):
        assert shown in html, shown


def test_component_user_error_exits_2_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("nope\n")
    args = {"ideas": art(Dataset, tmp_path, "ideas"), "recipe_file": art(Artifact, tmp_path, "r")}
    with pytest.raises(SystemExit) as exit_info:
        preflight.python_func(**preflight_arguments(ideas_uri=str(bad), **args))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    where, error = err.splitlines()  # where the task runs, then the one line of the error
    assert where.startswith("dpo-titles preflight: running as uid ")
    assert error.startswith("dpo-titles preflight: error:")
    assert not (tmp_path / "ideas").exists()


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("gen_titles_per_idea", 1, "gen_titles_per_idea must be a whole number at least 2 and"),
        ("label_mode", "round-robin", "label_mode must be one of listwise, pairwise"),
        ("gen_provider", "openai", "gen_provider must be one of hf, together, gemini"),
        ("eval_judge", "me", "eval_judge must be one of rubric, together, gemini"),
        (
            "sample_temperature",
            -0.5,
            "sample_temperature must be a number at least 0 and at most 100 (0 means greedy)",
        ),
        ("sample_top_p", 1.5, "sample_top_p must be a number more than 0 and at most 1, got 1.5"),
        (
            "sample_max_new_tokens",
            0,
            "sample_max_new_tokens must be a whole number at least 1 and at most 1,024, got 0",
        ),
        ("eval_seed", -1, "eval_seed must be a whole number at least 0 and at most"),
        ("eval_samples_per_idea", 0, "eval_samples_per_idea must be a whole number at least 1"),
        ("eval_reward_pairs", -3, "eval_reward_pairs must be a whole number at least 0"),
        ("prepare_val_fraction", 1.0, "prepare_val_fraction must be a number more than 0 and less"),
        ("api_max_in_flight", 0, "api_max_in_flight must be a whole number at least 1"),
        ("api_requests_per_minute", -1.0, "api_requests_per_minute must be a number at least 0"),
        ("gpu_count", 0, "gpu_count must be a whole number at least 1"),
        ("shards", 0, "shards must be between 1 and 256"),
        ("train_num_train_epochs", "-1", "train_num_train_epochs must be a number more than 0 and"),
        ("train_seed", "-2", "train_seed must be a whole number at least 0 and at most"),
        ("train_learning_rate", "0", "train_learning_rate must be a number more than 0"),
        ("max_input_mb", 0.0, "max_input_mb must be a number more than 0"),
    ],
)
def test_preflight_names_each_bad_setting_as_the_pipeline_does(
    tmp_path, capsys, ideas_csv, setting, value, named
):
    ideas, recipe = art(Dataset, tmp_path, "ideas"), art(Artifact, tmp_path, "recipe")
    args = preflight_arguments(ideas_uri=str(ideas_csv), ideas=ideas, recipe_file=recipe)
    with pytest.raises(SystemExit) as exit_info:
        preflight.python_func(**{**args, setting: value})
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and f"\ndpo-titles preflight: error: {named}" in err, err
    assert not (tmp_path / "ideas").exists() and not (tmp_path / "recipe").exists()
