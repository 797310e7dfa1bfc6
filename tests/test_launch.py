"""Training on several processes, for real: torchrun on loopback with the gloo backend.

Two "nodes" of one process each train the tiny model as a TrainJob's nodes would (torchrun
configured by the Trainer's PET_* variables alone), and one node of two processes as `train
--num-processes 2` launches them; a probe on the training step (tests/harness/torchrun_probe.py)
records what each rank trained on. The run must see a world of two, give each rank its own rows,
write one model, and end where one process with the same effective batch ends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dpo_titles.dataset import build_dataset
from tests.conftest import REPO
from tests.test_train import _prefs

# 32 training pairs; 2 processes x 4 pairs = 1 process x 8 pairs: 4 optimizer steps an epoch.
SETTINGS = {
    "num_train_epochs": 2,
    "gradient_accumulation_steps": 1,
    "logging_steps": 1,
    "eval_steps": 100,
    "save_steps": 100,
    "learning_rate": 1e-3,
    "lr_scheduler_type": "constant",
    "warmup_steps": 0,
}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _train(cmd: list[str], env: dict, cwd) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def _args(tiny_model, ds, out, batch: int) -> list[str]:
    sets = [f"{k}={v}" for k, v in {**SETTINGS, "per_device_train_batch_size": batch}.items()]
    argv = ["train", "--model", str(tiny_model), "--dataset", str(ds), "--out", str(out)]
    argv += ["--recipe", "local"]
    for item in sets:
        argv += ["--set", item]
    return argv


@pytest.fixture(scope="module")
def runs(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("torchrun")
    ds = root / "ds"
    build_dataset(_prefs(10), ds, val_fraction=0.2, seed=0)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")]),
        "OMP_NUM_THREADS": "1",  # two processes on two cores
        "PROBE_DIR": str(root),
    }
    (root / "one").mkdir()
    (root / "two").mkdir()
    single = _train(
        [
            sys.executable,
            "-m",
            "tests.harness.torchrun_probe",
            *_args(tiny_model, ds, root / "m1", 8),
        ],
        {**env, "PROBE_DIR": str(root / "one")},
        root,
    )
    # Two nodes of one process each, as a Kubeflow Trainer TrainJob starts them: each node runs
    # `torchrun -m dpo_titles.cli train ...` with nothing but the PET_* variables the Trainer's
    # torch plugin sets (kubeflow/trainer pkg/runtime/framework/plugins/torch), here on loopback.
    port = _free_port()
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "-m", "tests.harness.torchrun_probe"]
            + _args(tiny_model, ds, root / "m2", 4),
            env={
                **env,
                "PROBE_DIR": str(root / "two"),
                "PET_NNODES": "2",
                "PET_NPROC_PER_NODE": "1",
                "PET_NODE_RANK": str(rank),
                "PET_MASTER_ADDR": "127.0.0.1",
                "PET_MASTER_PORT": str(port),
            },
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    for node in nodes:
        out, err = node.communicate(timeout=600)
        assert node.returncode == 0, err[-4000:]
    # One node, two processes: what `train --num-processes 2` (gpu_count=2) launches.
    launched = _train(
        [sys.executable, "-m", "dpo_titles.cli", *_args(tiny_model, ds, root / "m3", 4)]
        + ["--num-processes", "2"],
        env,
        root,
    )
    double = nodes
    return {"root": root, "single": single, "double": double, "launched": launched}


def _probe(folder) -> dict[int, dict]:
    return {int(p.stem[4:]): json.loads(p.read_text()) for p in sorted(folder.glob("rank*.json"))}


def test_two_processes_see_a_world_of_two_over_gloo(runs):
    probes = _probe(runs["root"] / "two")
    assert sorted(probes) == [0, 1]
    for probe in probes.values():
        assert probe["world_size"] == probe["trainer_world_size"] == 2
        assert probe["backend"] == "gloo"


def test_each_rank_trains_on_its_own_rows(runs):
    probes = _probe(runs["root"] / "two")
    first, second = probes[0]["batches"], probes[1]["batches"]
    assert len(first) == len(second) == 8  # 2 epochs x 4 steps
    for a, b in zip(first, second, strict=True):
        # 4 pairs a rank: a chosen and a rejected sequence each.
        assert len(a) == len(b) == 8 and not set(a) & set(b)
    # Together, each epoch covers what one process covers with the doubled batch.
    single = _probe(runs["root"] / "one")[0]["batches"]
    assert [sorted(a + b) for a, b in zip(first, second, strict=True)] == [
        sorted(s) for s in single
    ]


def test_one_model_is_written_and_it_ends_where_one_process_ends(runs):
    root = runs["root"]
    assert (root / "m2" / "config.json").is_file()
    assert not list(root.glob(".m2*"))  # no second writer left a partial folder
    one = json.loads((root / "m1" / "train_metrics.json").read_text())
    two = json.loads((root / "m2" / "train_metrics.json").read_text())
    assert one["global_step"] == two["global_step"] == 8
    assert (one["world_size"], two["world_size"]) == (1, 2)
    # Averaged gradients of 2 x 4 pairs are those of 8 pairs: the same descent, to rounding.
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-3, abs=1e-4)
    history = json.loads((root / "m2" / "log_history.json").read_text())
    losses = [e["loss"] for e in history if "loss" in e]
    single = [
        e["loss"] for e in json.loads((root / "m1" / "log_history.json").read_text()) if "loss" in e
    ]
    assert losses == pytest.approx(single, rel=1e-3, abs=1e-4)


def test_the_launcher_trains_on_two_processes_of_one_node(runs):
    root = runs["root"]
    one = json.loads((root / "m1" / "train_metrics.json").read_text())
    launched = json.loads((root / "m3" / "train_metrics.json").read_text())
    assert launched["world_size"] == 2 and launched["global_step"] == 8
    assert launched["train_loss"] == pytest.approx(one["train_loss"], rel=1e-3, abs=1e-4)
    # One summary on stdout for the run, not one per process.
    assert len(runs["launched"].stdout.strip().splitlines()) == 1


def test_the_launcher_runs_the_same_command_under_torchrun():
    from dpo_titles.cli import build_parser
    from dpo_titles.launch import launch_command

    cmd = launch_command(
        4, "Qwen/x", "/data/ds", "/out/m", "lora", {"beta": "0.2", "lora.merge": False}, "/ck"
    )
    assert cmd[1:3] == ["-m", "torch.distributed.run"]
    assert cmd[cmd.index("--nproc-per-node") + 1] == "4" and "--standalone" in cmd
    args = build_parser().parse_args(cmd[cmd.index("dpo_titles.cli") + 1 :])
    assert (args.model, args.dataset, args.out, args.recipe) == (
        "Qwen/x",
        "/data/ds",
        "/out/m",
        "lora",
    )
    assert args.set == ["beta=0.2", "lora.merge=false"] and args.checkpoint_dir == "/ck"
    assert args.num_processes == 1  # the launched processes train; they do not launch again
