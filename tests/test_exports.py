"""Inputs from gs:// and the export stage, through the command line, against the real
google-cloud-storage client and a GCS emulator on loopback (tests/fakes/gcs.py)."""

import json

import pytest

from dpo_titles.cli import main
from dpo_titles.errors import UserError
from dpo_titles.exports import Exports, check_exports
from tests.conftest import REPO, preflight_arguments
from tests.fakes.gcs import GcsEmulator


@pytest.fixture()
def gcs(monkeypatch):
    with GcsEmulator(buckets=["inputs", "results"]) as emulator:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.host)
        yield emulator


def test_generate_reads_ideas_from_gcs(tmp_path, gcs, ideas_csv, tiny_model):
    from dpo_titles.files import read_csv
    from dpo_titles.storage import upload

    upload(ideas_csv, "gs://inputs/ideas.csv")
    out = tmp_path / "cand.csv"
    code = main(
        ["-q", "generate", "--ideas", "gs://inputs/ideas.csv", "--out", str(out)]
        + ["--provider", "hf", "--model", str(tiny_model), "--n", "2", "--max-new-tokens", "12"]
    )
    assert code == 0
    rows = read_csv(out, ["idea", "title"], "candidates")
    ideas = {r["idea"] for r in read_csv(ideas_csv, ["idea"], "ideas")}
    assert {r["idea"] for r in rows} == ideas


@pytest.mark.parametrize(
    "uri, words",
    [
        ("gs://inputs/nope.csv", "no object at gs://inputs/nope.csv"),
        ("gs://no-such-bucket/ideas.csv", "bucket no-such-bucket does not exist"),
    ],
)
def test_missing_inputs_on_gcs_are_one_line(uri, words, gcs, capsys):
    assert main(["validate", "--ideas", uri]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


def test_export_copies_dataset_and_model_folders(tmp_path, gcs):
    from google.cloud import storage

    from dpo_titles.dataset import build_dataset

    prefs = [{"idea": f"idea {i}", "chosen": "A Good Title", "rejected": "bad"} for i in range(6)]
    build_dataset(prefs, tmp_path / "ds", val_fraction=0.3, seed=0)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "qwen2"}')
    code = main(
        ["-q", "export", "--dataset", str(tmp_path / "ds"), "--model", str(model)]
        + ["--dataset-uri", "gs://results/r1/dataset", "--model-uri", "gs://results/r1/model/"]
    )
    assert code == 0
    blobs = {b.name: b for b in storage.Client().list_blobs("results")}
    assert "r1/model/config.json" in blobs and "r1/dataset/split.json" in blobs
    split = json.loads(blobs["r1/dataset/split.json"].download_as_bytes())
    assert split == json.loads((tmp_path / "ds" / "split.json").read_text())


def test_export_destinations_are_checked_before_any_work(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    check_exports(Exports())  # nothing asked for: nothing to check
    with pytest.raises(UserError, match="must be a gs://"):
        check_exports(Exports(dataset_uri="/tmp/somewhere"))
    with pytest.raises(UserError, match="not valid"):
        check_exports(Exports(hub_model_repo="not a repo!"))
    with pytest.raises(UserError, match="HF_TOKEN"):
        check_exports(Exports(hub_dataset_repo="me/titles"))
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    check_exports(Exports(hub_dataset_repo="me/titles", model_uri="gs://bucket/models"))


def test_preflight_refuses_a_bad_export_before_reading_ideas(tmp_path):
    from components.preflight import preflight

    class Out:
        def __init__(self, name):
            self.path = str(tmp_path / name)

    with pytest.raises(SystemExit) as exc:
        preflight.python_func(
            **preflight_arguments(
                ideas_uri=str(REPO / "data" / "ideas.csv"),
                ideas=Out("ideas.csv"),
                recipe_file=Out("recipe.json"),
                export_hub_model_repo="bad repo name",
            )
        )
    assert exc.value.code == 2 and not (tmp_path / "ideas.csv").exists()


def test_preflight_reads_the_optional_inputs_before_training(tmp_path):
    from dpo_titles.stages import validate

    ideas = str(REPO / "data" / "ideas.csv")
    with pytest.raises(UserError, match="missing.csv"):
        validate(ideas, eval_ideas_path=str(tmp_path / "missing.csv"))
    bad = tmp_path / "human.csv"
    bad.write_text("idea,better\nx,y\n")
    with pytest.raises(UserError, match="chosen"):
        validate(ideas, human_preferences_path=str(bad))
    assert validate(ideas, eval_ideas_path=ideas)["ideas"] > 0


def test_human_pairs_join_the_dataset_and_bad_rows_are_refused(tmp_path):
    from dpo_titles.dataset import load_split
    from dpo_titles.files import write_csv
    from dpo_titles.settings import Split
    from dpo_titles.stages import prepare

    cols = ["idea", "chosen", "rejected", "judge"]
    judged = [
        {"idea": f"idea {i}", "chosen": "A Good Title", "rejected": "bad", "judge": "rubric"}
        for i in range(6)
    ]
    write_csv(tmp_path / "prefs.csv", judged, cols)
    human = [{"idea": "a human idea", "chosen": "Human Pick", "rejected": "meh", "judge": ""}]
    write_csv(tmp_path / "human.csv", human, cols)
    stats = prepare(
        str(tmp_path / "prefs.csv"),
        str(tmp_path / "ds"),
        Split(val_fraction=0.3, seed=0),
        human_preferences_path=str(tmp_path / "human.csv"),
    )
    assert stats["human_pairs"] == 1
    assert "human" in load_split(tmp_path / "ds")["judges"]
    write_csv(tmp_path / "same.csv", [{**human[0], "rejected": "Human Pick"}], cols)
    with pytest.raises(UserError, match="row 2: needs an idea and two different titles"):
        prepare(
            str(tmp_path / "prefs.csv"),
            str(tmp_path / "ds2"),
            Split(val_fraction=0.3, seed=0),
            human_preferences_path=str(tmp_path / "same.csv"),
        )
