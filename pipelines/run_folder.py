"""Run folders for `make run-local`: where a run's outputs are gathered after kfp.local runs it.

kfp.local writes each task's outputs under `<pipeline_root>/<pipeline>-<timestamp>/<task>/<name>`;
users want them in one place with plain names, and `runs/latest` to find the newest. This knows
the pipeline's task names, so it lives beside the pipeline, not in the library.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
from pathlib import Path

from dpo_titles.errors import UserError
from dpo_titles.files import read_json, write_json

# (task name in kfp.local's layout, output name) -> name in the run folder
OUTPUTS = {
    ("preflight", "ideas"): "ideas.csv",
    ("merge-candidates", "merged"): "candidates.csv",
    ("merge-preferences", "merged"): "preferences.csv",
    ("prepare-dataset", "dataset"): "dataset",
    ("train-dpo", "model"): "model",
    ("evaluate-models", "evaluation"): "evaluation",
    ("measure-agreement", "agreement"): "agreement.json",
    ("write-report", "report"): "report.html",
}

# Parameters that name a local path; made absolute so each task finds them whatever its cwd.
PATH_PARAMS = (
    "ideas_uri",
    "eval_ideas_uri",
    "prepare_human_preferences_uri",
    "base_model",
    "gen_model",
    "train_recipe",
    "train_checkpoint_dir",
)
# The inputs that must exist (a model may be a hub id; a recipe may be a built-in name).
INPUT_FILES = ("ideas_uri", "eval_ideas_uri", "prepare_human_preferences_uri")


def resolve_local_paths(params: dict) -> dict:
    """Parameters that name a local path, made absolute (each task runs in a folder of its
    own); an input file that does not exist is a one-line error."""
    out = dict(params)
    for key in PATH_PARAMS:
        value = out.get(key)
        if not isinstance(value, str) or not value or "://" in value:
            continue
        path = Path(value)
        if path.exists() or key == "train_checkpoint_dir":  # the training task creates it
            out[key] = str(path.resolve())
        elif key in INPUT_FILES:
            raise UserError(f"{key}: file {value} does not exist: fix the path")
        elif key == "train_recipe" and (path.suffix in (".yaml", ".yml", ".json") or "/" in value):
            raise UserError(f"train_recipe: file {value} does not exist: fix the path")
        elif key != "train_recipe" and (
            value.startswith((".", "/")) or os.sep in value and not _looks_like_hub_id(value)
        ):
            raise UserError(f"{key} {value} does not exist: build it with `make tiny-model`")
    return out


def _looks_like_hub_id(value: str) -> bool:
    return value.count("/") == 1 and not value.startswith(("models/", "runs/", "data/"))


def start_run_dir(runs_dir, run_id: str | None = None) -> Path:
    """A new, empty folder for one run under `runs_dir`; `run_id` is a plain name."""
    run_id = run_id or _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    if "/" in run_id or "\\" in run_id or run_id.startswith(".") or run_id == "latest":
        raise UserError(
            f"--run-id {run_id!r} must be a plain folder name (no '/', not starting with '.', "
            "not 'latest')"
        )
    if len(run_id.encode("utf-8", "surrogateescape")) > 200:
        raise UserError("--run-id is over 200 bytes: shorten it")
    run_dir = Path(runs_dir) / run_id
    if os.path.lexists(run_dir):
        raise UserError(f"run folder {run_dir} already exists: choose another --run-id")
    try:
        run_dir.mkdir(parents=True)
    except OSError as exc:
        raise UserError(f"cannot make the run folder {run_dir}: {exc.strerror or exc}") from None
    return run_dir


def _task_dir(kfp_root: Path, task: str) -> Path | None:
    found = sorted(kfp_root.glob(f"*/{task}"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def gather_outputs(run_dir, minutes: float | None = None) -> Path:
    """Copy each task's output into the run folder under a plain name, put `metrics.json` at the
    top and point `runs/latest` at this run. Returns the report's path."""
    run_dir = Path(run_dir)
    kfp_root = run_dir / "kfp"
    missing = []
    for (task, name), target in OUTPUTS.items():
        task_dir = _task_dir(kfp_root, task)
        source = task_dir / name if task_dir else None
        if source is None or not source.exists():
            missing.append(f"{task}/{name}")
            continue
        dest = run_dir / target
        if source.is_dir():
            shutil.copytree(source, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(source, dest)
    if missing:
        raise UserError(f"the run did not produce {', '.join(missing)}: see the task logs above")
    metrics = read_json(run_dir / "evaluation" / "metrics.json", "evaluation metrics", dict)
    if minutes is not None:
        metrics["pipeline_minutes"] = round(minutes, 2)
    write_json(run_dir / "metrics.json", metrics)
    shutil.copy2(run_dir / "evaluation" / "comparisons.csv", run_dir / "comparisons.csv")
    point_latest(run_dir)
    return run_dir / "report.html"


def point_latest(run_dir: Path) -> None:
    """Swap `latest` to this run with a rename, so it never points at a half-made state."""
    link = run_dir.parent / "latest"
    # Ours is a link to a sibling run folder by its plain name; anything else is the user's.
    ours = link.is_symlink() and "/" not in os.readlink(link)
    if os.path.lexists(link) and not ours:
        raise UserError(
            f"{link} is not the link dpo-titles keeps to the newest run: move it away; the run "
            f"is in {run_dir}"
        )
    tmp = run_dir.parent / f".latest.{os.getpid()}.tmp"
    tmp.symlink_to(run_dir.name, target_is_directory=True)
    os.replace(tmp, link)
