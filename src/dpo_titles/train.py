"""Stage 4: Direct Preference Optimization with TRL.

The policy is given to `DPOTrainer` loaded with `from_pretrained(path)`: TRL 1.16 builds its
reference model from the policy's path, so both start from the same weights.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

from .dataset import load_dataset_dict
from .errors import UserError
from .files import atomic_path, write_json
from .recipes import Recipe

log = logging.getLogger(__name__)

HISTORY_FILE = "log_history.json"
TRAIN_METRICS_FILE = "train_metrics.json"
RECIPE_FILE = "recipe.json"
MIN_TRAIN_PAIRS = 4


def final_metrics(log_history: list[dict]) -> dict:
    """The last value of each figure a report shows, from the trainer's log history."""
    keys = [
        "loss",
        "rewards/accuracies",
        "rewards/margins",
        "rewards/chosen",
        "rewards/rejected",
        "eval_loss",
        "eval_rewards/accuracies",
        "eval_rewards/margins",
        "train_loss",
        "train_runtime",
    ]
    out: dict = {}
    for entry in log_history:
        for k in keys:
            if k in entry and isinstance(entry[k], int | float) and math.isfinite(entry[k]):
                out[k] = entry[k]
    if "loss" in out:
        out["final_train_loss"] = out.pop("loss")
    for k in [k for k in out if k.startswith("rewards/")]:
        out[f"train_{k}"] = out.pop(k)
    return out


class _StopOnNonFinite:
    """Stop at once when the loss stops being a number; training on would only waste GPU time."""

    def __new__(cls):
        from transformers import TrainerCallback

        class Callback(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                loss = (logs or {}).get("loss")
                if loss is not None and not math.isfinite(loss):
                    raise UserError(
                        f"training loss became {loss} at step {state.global_step}: "
                        "lower the learning rate or check the data"
                    )

        return Callback()


def train_dpo(model_path: str, dataset_dir, out_dir, recipe: Recipe) -> dict:
    """Train with `recipe`; write the tuned model folder (merged, `from_pretrained`-loadable),
    its tokenizer, `log_history.json`, `train_metrics.json` and a model card. Returns metrics."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    began = time.perf_counter()
    data = load_dataset_dict(dataset_dir)
    train = data["train"].select_columns(["prompt", "chosen", "rejected"])
    val = data["validation"].select_columns(["prompt", "chosen", "rejected"])
    if len(train) < MIN_TRAIN_PAIRS:
        raise UserError(
            f"only {len(train)} training pairs: need at least {MIN_TRAIN_PAIRS}; "
            "add ideas or generate more titles per idea"
        )
    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        policy = AutoModelForCausalLM.from_pretrained(
            model_path, dtype=torch.bfloat16 if bf16 else torch.float32
        )
    except OSError as exc:
        raise UserError(
            f"cannot load base model {model_path!r}: {str(exc).splitlines()[0]}"
        ) from exc

    peft_config = None
    if recipe.use_lora:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=recipe.lora_r,
            lora_alpha=recipe.lora_alpha,
            lora_dropout=recipe.lora_dropout,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )

    out_dir = Path(out_dir)
    work = out_dir.parent / f".{out_dir.name}.work"
    args = DPOConfig(
        output_dir=str(work),
        num_train_epochs=recipe.epochs,
        per_device_train_batch_size=recipe.batch_size,
        per_device_eval_batch_size=max(recipe.batch_size, 8),
        gradient_accumulation_steps=recipe.gradient_accumulation_steps,
        learning_rate=recipe.learning_rate,
        lr_scheduler_type=recipe.lr_scheduler_type,
        warmup_steps=recipe.warmup_steps,
        beta=recipe.beta,
        loss_type=[t.strip() for t in recipe.loss_type.split(",")],
        max_length=recipe.max_length,
        seed=recipe.seed,
        bf16=bf16,
        fp16=False,
        use_cpu=not cuda,
        logging_steps=recipe.logging_steps,
        eval_strategy="steps" if len(val) else "no",
        eval_steps=recipe.eval_steps,
        save_strategy="no",
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    trainer = DPOTrainer(
        model=policy,
        args=args,
        train_dataset=train,
        eval_dataset=val if len(val) else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[_StopOnNonFinite()],
    )
    log.info(
        "training: %d pairs, %d validation pairs, recipe %s, device %s",
        len(train),
        len(val),
        recipe.name,
        "cuda" if cuda else "cpu",
    )
    trainer.train()
    if len(val):
        trainer.evaluate()
    history = trainer.state.log_history
    metrics = final_metrics(history)
    metrics["train_pairs"] = len(train)
    metrics["validation_pairs"] = len(val)
    metrics["train_seconds"] = round(time.perf_counter() - began, 1)

    model = trainer.model
    if recipe.use_lora:
        model = model.merge_and_unload()
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / HISTORY_FILE, history)
        write_json(tmp / TRAIN_METRICS_FILE, metrics)
        write_json(tmp / RECIPE_FILE, {"base_model": model_path, **recipe.as_dict()})
        (tmp / "README.md").write_text(
            model_card(model_path, dataset_dir, recipe, metrics), encoding="utf-8"
        )
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    log.info("tuned model written to %s in %.0fs", out_dir, metrics["train_seconds"])
    return metrics


def model_card(base: str, dataset_dir, recipe: Recipe, metrics: dict) -> str:
    shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}
    return (
        "---\n"
        f"base_model: {base}\n"
        "library_name: transformers\n"
        "tags: [dpo, trl, youtube-titles, dpo-titles]\n"
        "---\n"
        "# YouTube title writer, tuned with DPO\n\n"
        f"Base model `{base}`, tuned with TRL's `DPOTrainer` by dpo-titles on preference pairs "
        f"from `{dataset_dir}`.\n\n"
        "## Recipe\n\n```json\n" + json.dumps(recipe.as_dict(), indent=2) + "\n```\n\n"
        "## Final training figures\n\n```json\n" + json.dumps(shown, indent=2) + "\n```\n"
    )
