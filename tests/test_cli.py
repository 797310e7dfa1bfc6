"""The command line, stage by stage on files, as a user runs it."""

import json
import subprocess
import sys

import pytest

from dpo_titles.cli import build_parser, main

STAGES = ["validate", "generate", "label", "prepare", "train", "evaluate", "report", "tiny-model"]


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "dpo_titles.cli", *args], capture_output=True, text=True
    )


def test_every_flag_is_explained():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(STAGES) <= set(sub.choices)
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings} has no help"
        assert p.format_help().startswith("usage:")


def test_bad_ideas_give_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "ideas.csv"
    bad.write_text("title\nsomething\n")
    result = run_cli("validate", "--ideas", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "idea" in lines[0] and "Traceback" not in result.stderr


def test_missing_model_is_one_line(tmp_path, ideas_csv):
    result = run_cli(
        "generate",
        "--ideas",
        str(ideas_csv),
        "--out",
        str(tmp_path / "c.csv"),
        "--provider",
        "hf",
        "--model",
        str(tmp_path / "no-such-model"),
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "does not exist" in result.stderr
    assert not (tmp_path / "c.csv").exists()


@pytest.fixture(scope="module")
def chain(tmp_path_factory, tiny_model):
    """generate -> label -> prepare -> train -> evaluate -> report, through `main`."""
    import csv

    from tests.conftest import REPO

    d = tmp_path_factory.mktemp("chain")
    with open(REPO / "data" / "ideas.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:16]
    ideas = d / "ideas.csv"
    with open(ideas, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["idea"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    m = str(tiny_model)
    steps = [
        [
            "generate",
            "--ideas",
            str(ideas),
            "--out",
            str(d / "cand.csv"),
            "--provider",
            "hf",
            "--model",
            m,
            "--n",
            "4",
            "--temperature",
            "1.2",
        ],
        [
            "label",
            "--candidates",
            str(d / "cand.csv"),
            "--out",
            str(d / "prefs.csv"),
            "--judge",
            "rubric",
        ],
        [
            "prepare",
            "--preferences",
            str(d / "prefs.csv"),
            "--out",
            str(d / "ds"),
            "--val-fraction",
            "0.25",
        ],
        [
            "train",
            "--model",
            m,
            "--dataset",
            str(d / "ds"),
            "--out",
            str(d / "tuned"),
            "--recipe",
            "local",
            "--set",
            "num_train_epochs=1",
            "--set",
            "eval_steps=5",
            "--set",
            "logging_steps=1",
            # Set below: one evaluation batch (max(batch_size, 8)) holding every validation pair,
            # so TRL's mean of batch means equals the plain mean the evaluate stage computes.
            "--set",
            "per_device_train_batch_size={validation_pairs}",
        ],
        [
            "evaluate",
            "--base-model",
            m,
            "--tuned-model",
            str(d / "tuned"),
            "--dataset",
            str(d / "ds"),
            "--out",
            str(d / "eval"),
            "--k",
            "2",
        ],
        [
            "report",
            "--eval",
            str(d / "eval"),
            "--model",
            str(d / "tuned"),
            "--out",
            str(d / "report.html"),
            "--candidates",
            str(d / "cand.csv"),
            "--dataset",
            str(d / "ds"),
        ],
    ]
    for step in steps:
        if step[0] == "train":
            pairs = json.loads((d / "ds" / "split.json").read_text())["validation_pairs"]
            assert pairs >= 8
            step = [a.format(validation_pairs=pairs) for a in step]
        assert main(["-q", *step]) == 0, step
    return d


def test_chain_writes_every_stage_output(chain, tiny_model):
    from transformers import AutoModelForCausalLM

    from dpo_titles.dataset import load_split
    from dpo_titles.files import read_csv

    cands = read_csv(chain / "cand.csv", ["idea", "title", "provider", "model"], "candidates")
    prefs = read_csv(chain / "prefs.csv", ["idea", "chosen", "rejected", "judge"], "preferences")
    assert cands and prefs and all(p["chosen"] != p["rejected"] for p in prefs)
    split = load_split(chain / "ds")
    assert not set(split["train_ideas"]) & set(split["validation_ideas"])
    model = AutoModelForCausalLM.from_pretrained(chain / "tuned")
    assert model.num_parameters() > 0
    history = json.loads((chain / "tuned" / "log_history.json").read_text())
    assert any("loss" in h for h in history) and any("eval_loss" in h for h in history)
    card = (chain / "tuned" / "README.md").read_text()
    # A local base model is named in the text; only a hub id goes in the Hub's base_model field.
    assert card.startswith("---\nlibrary_name: transformers") and f"`{tiny_model}`" in card
    metrics = json.loads((chain / "eval" / "metrics.json").read_text())
    for key in [
        "win_rate",
        "win_rate_ci_low",
        "win_rate_ci_high",
        "n_comparisons",
        "compliance_base",
        "compliance_tuned",
        "train_loss",
        "eval_loss",
    ]:
        assert key in metrics, key
    assert metrics["n_comparisons"] == 2 * len(split["validation_ideas"])
    # Our implicit reward on the validation pairs agrees with TRL's own final evaluation of the
    # same pairs (same beta, same tokenization), so the report's figure means what DPO means.
    assert (
        metrics["implicit_reward_pairs"] == metrics["validation_pairs"] == split["validation_pairs"]
    )
    # (Ours is rounded to four places.)
    assert metrics["implicit_reward_accuracy"] == pytest.approx(
        metrics["eval_rewards/accuracies"], abs=1e-4
    )
    assert metrics["implicit_reward_margin_mean"] == pytest.approx(
        metrics["eval_rewards/margins"], rel=0.02, abs=1e-3
    )
    comparisons = read_csv(chain / "eval" / "comparisons.csv", ["idea", "verdict"], "comparisons")
    assert {c["idea"] for c in comparisons} == set(split["validation_ideas"])
    html = (chain / "report.html").read_text()
    assert "<svg" in html and "sample-row" in html


def test_tuned_model_moved_away_from_base(chain, tiny_model):
    import torch
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    tuned = AutoModelForCausalLM.from_pretrained(chain / "tuned")
    diffs = [
        (a - b).abs().max().item()
        for a, b in zip(base.parameters(), tuned.parameters(), strict=True)
    ]
    assert max(diffs) > 0 and all(torch.isfinite(torch.tensor(diffs)))


def test_too_small_dataset_is_refused(tmp_path, tiny_model):
    from dpo_titles.dataset import build_dataset

    prefs = [
        {"idea": f"idea {i}", "chosen": "a good long title here", "rejected": "bad"}
        for i in range(4)
    ]
    build_dataset(prefs, tmp_path / "ds", val_fraction=0.5, seed=0)
    code = main(
        [
            "-q",
            "train",
            "--model",
            str(tiny_model),
            "--dataset",
            str(tmp_path / "ds"),
            "--out",
            str(tmp_path / "out"),
            "--recipe",
            "local",
        ]
    )
    assert code == 2 and not (tmp_path / "out").exists()
