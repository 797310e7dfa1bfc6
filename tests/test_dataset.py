import json

import pytest

from dpo_titles.dataset import build_dataset, load_dataset_dict, load_split, split_ideas
from dpo_titles.errors import UserError
from dpo_titles.prompts import render_prompt


def prefs(n_ideas=10, per_idea=3):
    return [
        {"idea": f"idea number {i}", "chosen": f"good title {i}-{j}", "rejected": f"bad {i}-{j}"}
        for i in range(n_ideas)
        for j in range(per_idea)
    ]


def test_split_is_by_idea_seeded_and_complete():
    ideas = [f"i{k}" for k in range(20)]
    train, val = split_ideas(ideas, 0.25, seed=1)
    assert len(val) == 5 and not set(train) & set(val)
    assert sorted(train + val) == sorted(ideas)
    assert split_ideas(ideas, 0.25, seed=1) == (train, val)
    assert split_ideas(ideas, 0.25, seed=2) != (train, val)


def test_split_refuses_too_few_ideas():
    with pytest.raises(UserError, match="at least 2"):
        split_ideas(["only"], 0.2, 0)
    with pytest.raises(UserError, match="between 0 and 1"):
        split_ideas(["a", "b"], 1.5, 0)


def test_dataset_folder_is_trl_conversational(tmp_path):
    stats = build_dataset(prefs(), tmp_path / "ds", val_fraction=0.2, seed=3)
    data = load_dataset_dict(tmp_path / "ds")
    assert len(data["train"]) == stats["train_pairs"] == 24
    assert len(data["validation"]) == stats["validation_pairs"] == 6
    ex = data["train"][0]
    assert ex["prompt"] == [{"role": "user", "content": render_prompt(ex["idea"])}]
    assert ex["chosen"][0]["role"] == "assistant" and ex["rejected"][0]["role"] == "assistant"
    train_ideas = set(data["train"]["idea"])
    val_ideas = set(data["validation"]["idea"])
    assert not train_ideas & val_ideas
    assert set(load_split(tmp_path / "ds")["validation_ideas"]) == val_ideas
    lines = (tmp_path / "ds" / "validation.jsonl").read_text().splitlines()
    assert len(lines) == 6 and json.loads(lines[0])["idea"] in val_ideas
    assert not list(tmp_path.glob(".*partial*"))


def test_no_pairs_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no preference pairs"):
        build_dataset([], tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def ranking(idea, titles):
    """Every pair of a ranking (best first), as a judge that ranks them consistently keeps."""
    return [
        {"idea": idea, "chosen": a, "rejected": b}
        for i, a in enumerate(titles)
        for b in titles[i + 1 :]
    ]


def test_best_pairs_are_those_of_each_ideas_best_title(tmp_path):
    from dpo_titles.dataset import best_pairs

    rows = ranking("idea one", ["A", "B", "C", "D"]) + ranking("idea two", ["x", "y"])
    # Listed out of order: the best is the title that won most, wherever it stands.
    rows.reverse()
    kept = best_pairs(rows)
    assert sorted((r["idea"], r["chosen"], r["rejected"]) for r in kept) == [
        ("idea one", "A", "B"),
        ("idea one", "A", "C"),
        ("idea one", "A", "D"),
        ("idea two", "x", "y"),
    ]
    # Two titles with as many wins: the one that lost fewer is the best.
    rows = [
        {"idea": "i", "chosen": "P", "rejected": "Q"},
        {"idea": "i", "chosen": "R", "rejected": "S"},
        {"idea": "i", "chosen": "P", "rejected": "S"},
        {"idea": "i", "chosen": "R", "rejected": "T"},
        {"idea": "i", "chosen": "T", "rejected": "P"},
    ]
    assert [r["chosen"] for r in best_pairs(rows)] == ["R", "R"]

    many = [r for k in range(8) for r in ranking(f"idea {k}", ["a", "b", "c", "d", "e"])]
    stats = build_dataset(many, tmp_path / "ds", 0.25, seed=1, pairs="best")
    assert stats["pairs"] == "best" and stats["labelled_pairs"] == 80
    assert stats["train_pairs"] + stats["validation_pairs"] == 32
    data = load_dataset_dict(tmp_path / "ds")
    chosen = {c[0]["content"] for split in data.values() for c in split["chosen"]}
    assert chosen == {"a"}
    assert build_dataset(many, tmp_path / "all", 0.25, seed=1)["train_pairs"] == 60
