"""Stage 3: preference rows -> TRL's conversational preference dataset, split by idea.

The split is by idea so that no idea's titles are both trained on and evaluated on; otherwise the
evaluation would reward memorising the training ideas.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

from .errors import UserError
from .files import read_json, write_json
from .outputs import atomic_dir
from .prompts import prompt_messages
from .settings import Split

log = logging.getLogger(__name__)

HF_DIR = "hf"


def split_ideas(ideas: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Shuffle distinct ideas with `seed` and hold out `val_fraction` of them (at least one)."""
    if not 0 < val_fraction < 1:
        raise UserError(f"validation fraction must be between 0 and 1, got {val_fraction}")
    distinct = sorted(set(ideas))
    if len(distinct) < 2:
        raise UserError(
            f"only {len(distinct)} idea(s) have preference pairs: need at least 2 to split by idea"
        )
    random.Random(seed).shuffle(distinct)
    n_val = min(len(distinct) - 1, max(1, round(len(distinct) * val_fraction)))
    return distinct[n_val:], distinct[:n_val]


def check_preference_rows(rows: list[dict], name) -> list[dict]:
    """Every preference row needs an idea and two different titles (chosen, rejected); the
    first that has not is a one-line error naming its row. `name` is the file (or its URI)."""
    for number, row in enumerate(rows, start=2):
        idea, chosen, rejected = (
            (row.get(k) or "").strip() for k in ("idea", "chosen", "rejected")
        )
        if not idea or not chosen or not rejected or chosen == rejected:
            raise UserError(
                f"{name} row {number}: needs an idea and two different titles in chosen and "
                "rejected"
            )
    return rows


def is_tie(row: dict) -> bool:
    """True for a human row whose verdict is `tie` (`annotate`'s "can't tell")."""
    return (row.get("verdict") or "").strip().lower() == "tie"


def read_human_preferences(path, name: str | None = None) -> list[dict]:
    """Human-labelled pairs (CSV: idea, chosen, rejected, optional judge and verdict), each
    checked: an idea and two different titles. Rows whose verdict is `tie` (`annotate`'s "can't
    tell") are no preference and are left out. `name` is what to call the file in messages."""
    from .files import read_csv

    rows = read_csv(path, ["idea", "chosen", "rejected"], "human preferences")
    # Checked before ties are dropped, so an error names the row as the file numbers it.
    for row in check_preference_rows(rows, name or str(path)):
        row["judge"] = row.get("judge") or "human"
    return [r for r in rows if not is_tie(r)]


def to_example(row: dict) -> dict:
    return {
        "prompt": prompt_messages(row["idea"]),
        "chosen": [{"role": "assistant", "content": row["chosen"]}],
        "rejected": [{"role": "assistant", "content": row["rejected"]}],
        "idea": row["idea"],
    }


def best_pairs(preferences: list[dict]) -> list[dict]:
    """The pairs whose chosen title is its idea's best: the title that won the most pairs (of
    those, the one that lost the fewest, then the first listed). Every idea keeps its pairs
    against the titles its best one beat."""
    wins: dict[str, dict[str, list[int]]] = {}
    for row in preferences:
        titles = wins.setdefault(row["idea"], {})
        titles.setdefault(row["chosen"], [0, 0])[0] += 1
        titles.setdefault(row["rejected"], [0, 0])[1] += 1
    best = {
        idea: max(titles, key=lambda t: (titles[t][0], -titles[t][1]))
        for idea, titles in wins.items()
    }
    return [row for row in preferences if row["chosen"] == best[row["idea"]]]


def build_dataset(
    preferences: list[dict],
    out_dir,
    val_fraction: float = Split.val_fraction,
    seed: int = Split.seed,
    *,
    pairs: str = Split.pairs,
    force: bool = False,
) -> dict:
    """Write the dataset folder: `hf/` (datasets.save_to_disk), `train.jsonl`,
    `validation.jsonl` and `split.json`, from all the pairs or (`pairs="best"`) those of each
    idea's best title. Returns statistics."""
    from datasets import Dataset, DatasetDict

    if not preferences:
        raise UserError("no preference pairs to build a dataset from: the judge kept none")
    labelled = len(preferences)
    if pairs == "best":
        preferences = best_pairs(preferences)
    train_ideas, val_ideas = split_ideas([r["idea"] for r in preferences], val_fraction, seed)
    val_set = set(val_ideas)
    train_rows = [to_example(r) for r in preferences if r["idea"] not in val_set]
    val_rows = [to_example(r) for r in preferences if r["idea"] in val_set]
    with atomic_dir(out_dir, force=force, kind="dataset") as tmp:
        DatasetDict(
            {"train": Dataset.from_list(train_rows), "validation": Dataset.from_list(val_rows)}
        ).save_to_disk(str(tmp / HF_DIR))
        for name, rows in (("train", train_rows), ("validation", val_rows)):
            with open(tmp / f"{name}.jsonl", "w", encoding="utf-8") as fh:
                for r in rows:
                    fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        stats = {
            "seed": seed,
            "val_fraction": val_fraction,
            "pairs": pairs,
            "labelled_pairs": labelled,
            "train_pairs": len(train_rows),
            "validation_pairs": len(val_rows),
            "train_ideas": sorted(train_ideas),
            "validation_ideas": sorted(val_ideas),
            # Who labelled the pairs: the evaluation warns when it is judged by the same judge.
            "judges": sorted({r["judge"] for r in preferences if r.get("judge")}),
        }
        write_json(tmp / "split.json", stats)
    log.info(
        "dataset: %s of %d labelled pairs: %d train pairs (%d ideas), %d validation pairs "
        "(%d ideas)",
        "all" if pairs == "all" else f"the best titles' {len(preferences)}",
        labelled,
        len(train_rows),
        len(train_ideas),
        len(val_rows),
        len(val_ideas),
    )
    return stats


def load_split(dataset_dir) -> dict:
    """The dataset's `split.json`: which ideas were trained on and held out, and by whom
    labelled."""
    path = Path(dataset_dir) / "split.json"
    if not path.is_file():
        raise UserError(f"{dataset_dir} is not a dataset folder from `dpo-titles prepare`")
    split = read_json(path, "split", dict)
    for key in ("train_ideas", "validation_ideas", "judges"):
        value = split.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UserError(f"split file {path}: {key} is not a list of texts: run `prepare` again")
    if "validation_ideas" not in split:
        raise UserError(f"split file {path} lacks its validation ideas: run `prepare` again")
    return split


def read_saved_dataset(path: Path, fix: str):
    """A folder `save_to_disk` wrote, loaded in memory; an unreadable one is a one-line error
    that names it and says `fix`."""
    from datasets import load_from_disk

    # In memory: otherwise every `map` (TRL's tokenization) writes cache-*.arrow files into the
    # input artifact, which another task may be reading or exporting, or which may be read-only.
    try:
        return load_from_disk(str(path), keep_in_memory=True)
    except Exception as exc:  # noqa: BLE001 - datasets and pyarrow raise many kinds for a bad file
        first = " ".join(str(exc).split())[:200] or type(exc).__name__
        kind = "is not a saved dataset" if isinstance(exc, FileNotFoundError) else "cannot be read"
        raise UserError(
            f"dataset files in {path} {kind} ({type(exc).__name__}: {first}): {fix}"
        ) from None


def load_dataset_dict(dataset_dir):
    """The train and validation splits, loaded in memory; a damaged folder is a one-line
    error that names it."""
    path = Path(dataset_dir) / HF_DIR
    if not path.is_dir():
        raise UserError(f"{dataset_dir} is not a dataset folder from `dpo-titles prepare`")
    data = read_saved_dataset(path, "run `prepare` again")
    missing = [s for s in ("train", "validation") if s not in data]
    if missing:
        raise UserError(
            f"dataset {path} lacks the {' and '.join(missing)} split: run `prepare` again"
        )
    return data
