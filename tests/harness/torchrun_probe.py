"""`dpo-titles` as torchrun starts it, with a probe on the training step: each process writes
which rows it trained on and what world it saw to `$PROBE_DIR/rank<R>.json`, then the real
command runs unchanged (tests/test_launch.py)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path


def _install_probe(probe_dir: Path) -> None:
    import torch.distributed as dist
    from trl import DPOTrainer

    seen: list[list[str]] = []
    real_step = DPOTrainer.training_step

    def training_step(self, model, inputs, *args, **kwargs):
        key = next(k for k in sorted(inputs) if k.endswith("input_ids"))
        seen.append(
            [hashlib.sha256(row.numpy().tobytes()).hexdigest() for row in inputs[key].cpu()]
        )
        rank = int(os.environ.get("RANK", "0"))
        world = {
            "rank": rank,
            "world_size": dist.get_world_size() if dist.is_initialized() else 1,
            "backend": dist.get_backend() if dist.is_initialized() else None,
            "trainer_world_size": self.args.world_size,
            "batches": seen,
        }
        (probe_dir / f"rank{rank}.json").write_text(json.dumps(world))
        return real_step(self, model, inputs, *args, **kwargs)

    DPOTrainer.training_step = training_step


if __name__ == "__main__":
    _install_probe(Path(os.environ["PROBE_DIR"]))
    from dpo_titles.cli import main

    sys.exit(main(sys.argv[1:]))
