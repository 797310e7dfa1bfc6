"""The training stage: checkpoints and resume, LoRA outputs, precomputed reference, guards."""

import json
import subprocess
import sys
import textwrap

import pytest

from dpo_titles.dataset import build_dataset
from dpo_titles.errors import UserError
from dpo_titles.recipes import load_recipe
from dpo_titles.train import fit_dpo

# Small and quick: 32 training pairs, batch 4, 2 epochs = 16 optimizer steps.
QUICK = {
    "num_train_epochs": 2,
    "per_device_train_batch_size": 4,
    "gradient_accumulation_steps": 1,
    "save_steps": 4,
    "eval_steps": 8,
    "logging_steps": 2,
    "warmup_steps": 0,
}
EXPECTED_STEPS = 16


def _prefs(n_ideas: int, suffix: str = "") -> list[dict]:
    rows = []
    for i in range(n_ideas):
        for j in range(4):
            rows.append(
                {
                    "idea": f"video idea number {i} about topic {i % 5}",
                    "chosen": f"How I Fixed Problem {i} In {j + 2} Simple Steps{suffix}",
                    "rejected": f"problem {i} video {j}{suffix}",
                }
            )
    return rows


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ds") / "ds"
    build_dataset(_prefs(10), folder, val_fraction=0.2, seed=0)
    return folder


def test_killed_training_resumes_from_its_last_checkpoint_and_ends_at_the_same_step(
    tmp_path, dataset, tiny_model
):
    recipe = load_recipe("local", QUICK)
    before = sorted(p.relative_to(dataset) for p in dataset.rglob("*"))
    whole = fit_dpo(str(tiny_model), dataset, tmp_path / "whole", recipe)
    assert whole["global_step"] == EXPECTED_STEPS and whole["resumed_from_step"] == 0
    # Training reads its input artifact and writes nothing into it (no datasets cache files).
    assert sorted(p.relative_to(dataset) for p in dataset.rglob("*")) == before

    # A real interruption: the process SIGKILLs itself right after the step-8 checkpoint is
    # written, as a pod does when its node goes away.
    ckpt = tmp_path / "ckpt"
    script = textwrap.dedent(
        f"""
        import os, signal
        from transformers import TrainerCallback
        from dpo_titles.recipes import load_recipe
        from dpo_titles.train import fit_dpo

        class Kill(TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                if state.global_step >= 8:
                    os.kill(os.getpid(), signal.SIGKILL)

        fit_dpo({str(tiny_model)!r}, {str(dataset)!r}, {str(tmp_path / "run")!r},
                  load_recipe("local", {QUICK!r}), checkpoint_dir={str(ckpt)!r},
                  callbacks=[Kill()])
        """
    )
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    assert (ckpt / "checkpoint-8" / "trainer_state.json").is_file()
    assert not (tmp_path / "run").exists()  # nothing half-written looks like a model

    resumed = fit_dpo(str(tiny_model), dataset, tmp_path / "run", recipe, checkpoint_dir=str(ckpt))
    assert resumed["resumed_from_step"] == 8
    assert resumed["global_step"] == whole["global_step"] == EXPECTED_STEPS
    history = json.loads((tmp_path / "run" / "log_history.json").read_text())
    logged = [h["step"] for h in history if "loss" in h]
    # The history spans the whole run: steps from before the kill came back with the checkpoint.
    assert min(logged) < 8 < max(logged)
    assert logged == sorted(set(logged))
    # Once the model is written its checkpoints go (GBs each on a real model); run.json stays.
    assert not list(ckpt.glob("checkpoint-*")) and (ckpt / "run.json").is_file()


def test_a_checkpoint_folder_of_another_run_is_refused(tmp_path, dataset, tiny_model):
    ckpt = tmp_path / "ckpt"
    quick = load_recipe("local", {**QUICK, "num_train_epochs": 1})
    fit_dpo(str(tiny_model), dataset, tmp_path / "a", quick, checkpoint_dir=str(ckpt))
    other = load_recipe("local", {**QUICK, "num_train_epochs": 1, "beta": 0.5})
    with pytest.raises(UserError, match=r"belongs to a run with other settings \(recipe\)"):
        fit_dpo(str(tiny_model), dataset, tmp_path / "b", other, checkpoint_dir=str(ckpt))


def _max_weight_change(a_dir, b_dir) -> float:
    from transformers import AutoModelForCausalLM

    a = AutoModelForCausalLM.from_pretrained(a_dir)
    b = AutoModelForCausalLM.from_pretrained(b_dir)
    return max(
        (x - y).abs().max().item() for x, y in zip(a.parameters(), b.parameters(), strict=True)
    )


def test_lora_is_merged_on_save_by_default(tmp_path, dataset, tiny_model):
    recipe = load_recipe(
        "lora", {**QUICK, "num_train_epochs": 1, "learning_rate": 1e-3, "max_length": 128}
    )
    stats = fit_dpo(str(tiny_model), dataset, tmp_path / "merged", recipe)
    assert stats["global_step"] == EXPECTED_STEPS // 2
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    assert (tmp_path / "merged" / "config.json").is_file()
    assert _max_weight_change(tiny_model, tmp_path / "merged") > 0
    card = (tmp_path / "merged" / "README.md").read_text()
    assert '"lora": {' in card and '"merge": true' in card and "training and" in card


def test_lora_adapter_only_output_loads_on_the_base(tmp_path, dataset, tiny_model):
    recipe = load_recipe(
        "lora", {**QUICK, "num_train_epochs": 1, "learning_rate": 1e-3, "lora.merge": "false"}
    )
    fit_dpo(str(tiny_model), dataset, tmp_path / "adapter", recipe)
    folder = tmp_path / "adapter"
    assert (folder / "adapter_config.json").is_file()
    assert not (folder / "model.safetensors").exists()
    assert json.loads((folder / "recipe.json").read_text())["adapter_only"] is True
    # transformers loads an adapter folder on top of its base model (through peft), and the
    # trained adapter changes what the model computes.
    import torch
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[5, 17, 42, 99, 7]])
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(tiny_model)(ids).logits
        tuned_model = AutoModelForCausalLM.from_pretrained(folder)
        tuned = tuned_model(ids).logits
    assert any("lora" in name for name, _ in tuned_model.named_parameters())
    assert (base - tuned).abs().max().item() > 1e-4


def test_precomputed_reference_log_probs_train(tmp_path, dataset, tiny_model):
    from transformers import TrainerCallback

    seen = {}

    class Columns(TrainerCallback):
        def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
            seen["columns"] = set(next(iter(train_dataloader)))

    recipe = load_recipe(
        "local", {**QUICK, "num_train_epochs": 1, "precompute_ref_log_probs": "true"}
    )
    stats = fit_dpo(str(tiny_model), dataset, tmp_path / "pre", recipe, callbacks=[Columns()])
    assert stats["global_step"] == EXPECTED_STEPS // 2
    assert "train_rewards/margins" in stats and "eval_loss" in stats
    # The reference log-probs were computed once and ride in every batch.
    assert {"ref_chosen_logps", "ref_rejected_logps"} <= seen["columns"]


def test_doubled_end_of_turn_token_is_refused(tmp_path, tiny_model):
    # Titles that already end in the template's end-of-turn token (huggingface/trl#4481).
    build_dataset(_prefs(6, suffix="<|im_end|>"), tmp_path / "ds", val_fraction=0.2, seed=0)
    with pytest.raises(UserError, match="trl#4481"):
        fit_dpo(str(tiny_model), tmp_path / "ds", tmp_path / "out", load_recipe("local", QUICK))
    assert not (tmp_path / "out").exists()


def test_a_max_length_shorter_than_every_prompt_is_one_line(tmp_path, tiny_model):
    build_dataset(_prefs(6), tmp_path / "ds", val_fraction=0.2, seed=0)
    with pytest.raises(UserError, match="prompt longer than max_length=8 tokens: raise max_length"):
        fit_dpo(
            str(tiny_model),
            tmp_path / "ds",
            tmp_path / "out",
            load_recipe("local", {**QUICK, "max_length": 8}),
        )
    assert not (tmp_path / "out").exists()
