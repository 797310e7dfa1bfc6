"""Training on several processes: the train stage again, under `torchrun`, a process per GPU.

One launcher for every distributed case. On one node, `train --num-processes N` (the pipeline's
`gpu_count`) re-runs the same command under `torchrun --standalone`. On several nodes (a Kubeflow
Trainer TrainJob), `torchrun` is the container's command and takes the node count, rank and
rendezvous from the PET_* variables the Trainer sets. Either way each process reads its rank and
the world size from the variables torchrun sets (RANK, LOCAL_RANK, WORLD_SIZE), which the
Trainer's Accelerate state picks up; `accelerate launch` and the trl CLI ignore the Trainer's
variables and would train at world size 1 (kubeflow/trainer#3930).

Data parallel: every process holds the model and takes its own batches, so the effective batch
is `per_device_train_batch_size x gradient_accumulation_steps x processes`. Only the first process
writes the model.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

from .errors import UserError

log = logging.getLogger(__name__)


def world() -> tuple[int, int]:
    """This process's (rank, world size), as torchrun (or a TrainJob's torchrun) set them; (0, 1)
    for a single process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def train_arguments(
    model: str,
    dataset_dir: str,
    out_dir: str,
    recipe: str,
    overrides: dict,
    checkpoint_dir: str | None,
    base_name: str | None = None,
    force: bool = False,
) -> list[str]:
    """The `dpo-titles train` arguments that run this training again in another process."""
    cmd = [
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


def launch_command(num_processes: int, *args, **kwargs) -> list[str]:
    """`torchrun` on this node with `num_processes` workers, each running `dpo-titles train`."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # one node: a local rendezvous on a free port
        "--nnodes",
        "1",
        "--nproc-per-node",
        str(num_processes),
        "-m",
        "dpo_titles.cli",
        *train_arguments(*args, **kwargs),
    ]


def run_distributed(num_processes: int, *args, **kwargs) -> None:
    """Run the training on `num_processes` processes of this node and wait for them."""
    cmd = launch_command(num_processes, *args, **kwargs)
    log.info("training on %d processes: %s", num_processes, " ".join(cmd))
    # The workers' stdout goes to stderr: this process prints the run's one summary.
    done = subprocess.run(cmd, check=False, stdout=sys.stderr)
    if done.returncode != 0:
        raise UserError(
            f"distributed training on {num_processes} processes failed (exit {done.returncode}); "
            "see the log above"
        )
