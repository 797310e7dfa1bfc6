"""Several GPUs on one node: the train stage again, under `accelerate launch`, a process per GPU.

Data parallel: every process holds the model and takes its share of each batch, so the
effective batch is `batch_size x gradient_accumulation_steps x processes`. Beyond one node,
see "Training on more than one node" in the README (Kubeflow Trainer).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from .errors import UserError

log = logging.getLogger(__name__)


def launch_command(
    num_processes: int,
    model: str,
    dataset_dir: str,
    out_dir: str,
    recipe: str,
    overrides: dict,
    checkpoint_dir: str | None,
    base_name: str | None = None,
    force: bool = False,
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        str(num_processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",  # the recipe's bf16 setting decides, inside the trainer
        "--dynamo_backend",
        "no",
        "-m",
        "dpo_titles.cli",
        "train",
        "--model",
        model,
        "--dataset",
        str(dataset_dir),
        "--out",
        str(out_dir),
        "--recipe",
        recipe,
    ]
    for key, value in overrides.items():
        if value is not None and value != "":
            shown = json.dumps(value) if isinstance(value, bool | dict | list) else str(value)
            cmd += ["--set", f"{key}={shown}"]
    if checkpoint_dir:
        cmd += ["--checkpoint-dir", str(checkpoint_dir)]
    if base_name and base_name != model:
        cmd += ["--base-name", base_name]
    if force:
        cmd.append("--force")
    return cmd


def run_distributed(num_processes: int, *args) -> None:
    cmd = launch_command(num_processes, *args)
    log.info("training on %d processes: %s", num_processes, " ".join(cmd))
    done = subprocess.run(cmd, check=False)
    if done.returncode != 0:
        raise UserError(
            f"distributed training on {num_processes} processes failed (exit {done.returncode}); "
            "see the log above"
        )
