"""The real pipeline definition, run through kfp.local, on a smaller configuration."""

import csv
import json

import pytest

from dpo_titles.outputs import is_bookkeeping
from pipelines.run_local import load_preset
from tests.conftest import REPO, RUN_ARTIFACTS, bundled_ideas


@pytest.mark.slow
def test_run_local_produces_every_artifact(tmp_path, tiny_model, capsys):
    from pipelines.run_local import main

    ideas = bundled_ideas(tmp_path / "ideas.csv", 16, ("idea", "category"))
    rows = list(csv.DictReader(open(ideas, encoding="utf-8")))
    # Pairs a person labelled (one "can't tell"), as `dpo-titles annotate` writes them.
    human = tmp_path / "human.csv"
    with open(human, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["idea", "chosen", "rejected", "verdict", "labeller"])
        for n, row in enumerate(rows[:6]):
            on_topic = " ".join(row["idea"].split()[:7]).title()[:70]
            loud = f"YOU WON'T BELIEVE THIS!!! NUMBER {n}"
            writer.writerow([row["idea"], on_topic, loud, "tie" if n == 0 else "preferred", "me"])
    code = main(
        [
            "--preset",
            "local",
            "--ideas",
            str(ideas),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--run-id",
            "t1",
            "--set",
            f"base_model={tiny_model}",
            "--set",
            "train_overrides={num_train_epochs: 1, eval_steps: 5}",
            "--set",
            "eval_samples_per_idea=2",
            "--set",
            "sample_temperature=1.2",
            "--set",
            "shards=4",
            "--set",
            f"prepare_human_preferences_uri={human}",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    run = tmp_path / "runs" / "t1"
    assert f"report: {run / 'report.html'}" in out
    assert (tmp_path / "runs" / "latest").resolve() == run.resolve()
    for name in RUN_ARTIFACTS:
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    split = json.loads((run / "dataset" / "split.json").read_text())
    # The local preset also evaluates data/eval_ideas.csv (topics the tiny model never saw).
    extra = list(csv.DictReader(open(REPO / "data" / "eval_ideas.csv", encoding="utf-8")))
    assert metrics["n_comparisons"] == 2 * (len(split["validation_ideas"]) + len(extra))
    assert 0 <= metrics["win_rate_ci_low"] <= metrics["win_rate"] <= metrics["win_rate_ci_high"]
    assert metrics["eval_judge"] == "rubric"
    html = (run / "report.html").read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html
    # The label judge was measured against the person, and the report says how it went.
    agreement = json.loads((run / "agreement.json").read_text())
    assert agreement["pairs_compared"] == 6 and agreement["judge"] == "rubric"
    assert agreement["human_cant_tell_rate"] == round(1 / 6, 4)
    assert "agreement with people" in html
    assert html.count('class="sample-row"') == metrics["n_comparisons"]
    # Four shards fanned out and merged back: every idea has candidates.
    cands = list(csv.DictReader(open(run / "candidates.csv", encoding="utf-8")))
    assert {c["idea"] for c in cands} == {r["idea"] for r in rows}
    # The command line writes the very titles the pipeline's generate tasks wrote, for the same
    # ideas, model, seed and settings (every default is the settings dataclasses' own): here
    # for each of the four shards, the ideas dealt to it (sampling is seeded per batch).
    from dpo_titles.cli import main as cli
    from dpo_titles.shards import select_shard

    validated = list(csv.DictReader(open(run / "ideas.csv", encoding="utf-8")))
    for shard in range(4):
        dealt = select_shard(validated, shard, 4)
        part = tmp_path / f"shard{shard}.csv"
        with open(part, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(validated[0]))
            writer.writeheader()
            writer.writerows(dealt)
        out = tmp_path / f"cli{shard}.csv"
        argv = ["-q", "generate", "--ideas", str(part), "--model", str(tiny_model)]
        argv += ["--temperature", "1.2"]  # as the run was given
        argv += ["--n", str(load_preset("local")["gen_titles_per_idea"])]  # as the preset says
        assert cli([*argv, "--out", str(out)]) == 0
        from_cli = list(csv.DictReader(open(out, encoding="utf-8")))
        ideas_here = {r["idea"] for r in dealt}
        assert [(c["idea"], c["sample"], c["title"]) for c in from_cli] == [
            (c["idea"], c["sample"], c["title"]) for c in cands if c["idea"] in ideas_here
        ]


def test_run_local_fails_cleanly_on_bad_ideas(tmp_path, capsys):
    from pipelines.run_local import main

    bad = tmp_path / "bad.csv"
    bad.write_text("idea\n\n\nsame\nsame\n")
    code = main(
        [
            "--ideas",
            str(bad),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--run-id",
            "bad",
            "--set",
            f"base_model={tmp_path}",
        ]
    )
    captured = capsys.readouterr()
    assert code != 0
    assert "repeats row" in captured.out + captured.err
    assert not (tmp_path / "runs" / "latest").exists()


@pytest.mark.slow
def test_run_local_with_api_back_ends(tmp_path, tiny_model, capsys, monkeypatch):
    """The original project's shape (Together writes, Gemini judges both orders) through
    kfp.local, against loopback servers that speak their wire formats, with faults."""
    from pipelines.run_local import main
    from tests.fakes import FaultPlan, GeminiServer, TogetherServer

    for var in ("GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    with open(REPO / "data" / "ideas.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:10]
    ideas = tmp_path / "ideas.csv"
    with open(ideas, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["idea"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    faults = FaultPlan(rate=0.2, kinds=("429", "500", "malformed"), seed=1, retry_after_s=0.01)
    with TogetherServer(faults=faults) as together, GeminiServer(faults=faults) as gemini:
        for key, value in {**together.env, **gemini.env}.items():
            monkeypatch.setenv(key, value)
        code = main(
            [
                "--preset",
                "original",
                "--ideas",
                str(ideas),
                "--runs-dir",
                str(tmp_path / "runs"),
                "--run-id",
                "api",
                "--set",
                f"base_model={tiny_model}",
                "--set",
                "train_recipe=local",
                "--set",
                "train_overrides={num_train_epochs: 1}",
                "--set",
                "eval_judge=rubric",
                "--set",
                "eval_samples_per_idea=2",
                "--set",
                f"api_response_cache={tmp_path / 'cache'}",
            ]
        )
        out = capsys.readouterr().out
        assert code == 0, out[-3000:]
        assert together.calls >= 10 and gemini.calls > 0
    run = tmp_path / "runs" / "api"
    cands = list(csv.DictReader(open(run / "candidates.csv", encoding="utf-8")))
    assert {c["provider"] for c in cands} == {"together"}
    assert len({c["idea"] for c in cands}) == 10
    prefs = list(csv.DictReader(open(run / "preferences.csv", encoding="utf-8")))
    assert prefs and {p["judge"] for p in prefs} == {"gemini"}
    assert any((tmp_path / "cache").rglob("*.json"))


@pytest.mark.slow
def test_run_local_reads_from_and_exports_to_cloud_storage(
    tmp_path, tiny_model, ideas_csv, capsys, monkeypatch
):
    """The whole pipeline through kfp.local against a real GCS emulator on loopback: the ideas
    and the base model come from gs://, the dataset and the tuned model go back to gs://."""
    from google.cloud import storage as gcs

    from dpo_titles.storage import localize, upload
    from pipelines.run_local import main
    from tests.fakes.gcs import GcsEmulator

    rows = list(csv.DictReader(open(ideas_csv, encoding="utf-8")))
    with GcsEmulator(buckets=["inputs", "results"]) as emulator:
        # The kfp.local tasks are subprocesses; they find the emulator through the environment.
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.host)
        upload(ideas_csv, "gs://inputs/ideas/ideas.csv")
        upload(tiny_model, "gs://inputs/models/tiny/")
        code = main(
            [
                "--preset",
                "local",
                "--runs-dir",
                str(tmp_path / "runs"),
                "--run-id",
                "gcs",
                "--set",
                "ideas_uri=gs://inputs/ideas/ideas.csv",
                "--set",
                "base_model=gs://inputs/models/tiny/",
                "--set",
                "train_overrides={num_train_epochs: 1, eval_steps: 5}",
                "--set",
                "eval_samples_per_idea=1",
                "--set",
                "export_dataset_uri=gs://results/run1/dataset",
                "--set",
                "export_model_uri=gs://results/run1/model",
            ]
        )
        out = capsys.readouterr().out
        assert code == 0, out[-3000:]
        names = {b.name for b in gcs.Client().list_blobs("results")}
        run = tmp_path / "runs" / "gcs"
        local_dataset = {
            f"run1/dataset/{p.relative_to(run / 'dataset').as_posix()}"
            for p in (run / "dataset").rglob("*")
            if p.is_file() and not is_bookkeeping(p.name)
        }
        assert local_dataset and local_dataset <= names
        assert {"run1/model/config.json", "run1/model/model.safetensors"} <= names
        back = localize("gs://results/run1/dataset/split.json", tmp_path / "back")
        assert json.loads(open(back).read()) == json.loads((run / "dataset/split.json").read_text())
    cands = list(csv.DictReader(open(run / "candidates.csv", encoding="utf-8")))
    assert {c["idea"] for c in cands} == {r["idea"] for r in rows}
    # The command line writes the very titles the pipeline's generate task wrote, for the same
    # ideas, model, seed and settings (the defaults are the settings dataclasses', the number of
    # candidates the local preset's).
    from dpo_titles.cli import main as cli

    argv = ["generate", "--ideas", str(run / "ideas.csv"), "--model", str(tiny_model)]
    argv += ["--n", str(load_preset("local")["gen_titles_per_idea"])]
    assert cli(["-q", *argv, "--out", str(tmp_path / "cli.csv")]) == 0
    from_cli = list(csv.DictReader(open(tmp_path / "cli.csv", encoding="utf-8")))
    assert [(c["idea"], c["sample"], c["title"]) for c in from_cli] == [
        (c["idea"], c["sample"], c["title"]) for c in cands
    ]
