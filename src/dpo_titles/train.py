"""Stage 4: Direct Preference Optimization with TRL.

The policy is given to `DPOTrainer` loaded with `from_pretrained(path)`: TRL 1.16 builds its
reference model from the policy's path, so both start from the same weights.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import time
from pathlib import Path

from .dataset import load_dataset_dict
from .errors import NothingMade, UserError
from .files import json_text, write_json
from .launch import world
from .outputs import (
    atomic_dir,
    claim_workdir,
    clear_workdir,
    make_scratch,
    normalise_modes,
    write_private_file,
)
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


class _UsualModes:
    """Checkpoints with the usual file modes: torch.save writes some of them 0600."""

    def __new__(cls):
        from transformers import TrainerCallback

        class Callback(TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                normalise_modes(Path(args.output_dir))

        return Callback()


END_OF_TURN_CHECK_ROWS = 32
RUN_FILE = "run.json"
CHECKPOINTS = "checkpoints"  # the kind of folder checkpoints go to (outputs.check_workdir)
# What a checkpoint folder holds besides the trainer's checkpoint-<step> folders: our run.json,
# and the model card TRL writes at each save.
CHECKPOINT_FILES = (RUN_FILE, "README.md")


def check_end_of_turn(dataset, tokenizer, rows: int = END_OF_TURN_CHECK_ROWS) -> None:
    """Each tokenized completion must close its turn exactly once (huggingface/trl#4481): a
    template or a title that already carries the end-of-turn token makes it appear twice, and the
    model then learns to emit it twice; a template that never closes the turn teaches it never to
    stop."""
    eot = tokenizer.eos_token_id
    if eot is None:
        return
    name = tokenizer.convert_ids_to_tokens(eot)
    for i in range(min(rows, len(dataset))):
        row = dataset[i]
        for side in ("chosen_ids", "rejected_ids"):
            count = list(row[side]).count(eot)
            if count > 1:
                raise UserError(
                    f"the end-of-turn token {name} appears {count} times in a tokenized "
                    f"{side[:-4]} completion (row {i}): the titles or the chat template already "
                    "add it (huggingface/trl#4481); strip it from the data or fix the template"
                )
            if count == 0:
                log.warning(
                    "the chat template does not close the assistant turn with %s: the tuned "
                    "model may not learn to stop",
                    name,
                )
                return


def checkpoint_folder(explicit: str, volume: str, run_id: str) -> str | None:
    """Where a run keeps its checkpoints: `<explicit or volume/checkpoints>/<run_id>`, or None
    when neither a folder nor a cache volume is given."""
    root = explicit or (f"{volume.rstrip('/')}/checkpoints" if volume else "")
    if not root:
        return None
    return f"{root.rstrip('/')}/{run_id}" if run_id else root


def warn_if_truncated(dataset, max_length: int) -> float:
    """Share of pairs cut by `max_length`. A cut completion loses its last tokens, end-of-turn
    included, and the model stops learning where a title ends."""
    cut = sum(
        len(row["prompt_ids"]) + max(len(row["chosen_ids"]), len(row["rejected_ids"])) > max_length
        for row in dataset
    )
    share = cut / len(dataset) if len(dataset) else 0.0
    if cut:
        log.warning(
            "%d of %d training pairs (%.0f%%) are longer than max_length=%d and are cut at the "
            "end: raise max_length",
            cut,
            len(dataset),
            100 * share,
            max_length,
        )
    return share


def _last_good_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint whose trainer state was written: a pod killed while saving leaves a
    checkpoint folder without it, and the one before is used instead."""
    found = []
    for child in folder.glob("checkpoint-*"):
        suffix = child.name.rsplit("-", 1)[-1]
        state = child / "trainer_state.json"
        if suffix.isdigit() and state.is_file():
            try:
                json.loads(state.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            found.append((int(suffix), child))
    return max(found)[1] if found else None


def _claim_checkpoint_dir(folder: Path, signature: dict) -> Path | None:
    """Make `folder` this run's checkpoint folder; return the checkpoint to resume from. A
    folder left by a run with other settings is refused rather than silently resumed."""
    claim_workdir(folder, CHECKPOINTS, allowed=CHECKPOINT_FILES, what="checkpoint folder")
    run_file = folder / RUN_FILE
    if run_file.is_file():
        try:
            previous = json.loads(run_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(
                f"{run_file} cannot be read ({exc}): remove the checkpoint folder {folder}"
            ) from exc
        if previous != signature:
            changed = sorted(
                k for k in set(previous) | set(signature) if previous.get(k) != signature.get(k)
            )
            raise UserError(
                f"checkpoint folder {folder} belongs to a run with other settings "
                f"({', '.join(changed)}): give this run its own checkpoint folder"
            )
    elif world()[0] == 0:
        # One writer under torchrun; the folder's own bookkeeping, so no ledger entry.
        write_private_file(run_file, json_text(signature).encode("utf-8"))
    return _last_good_checkpoint(folder)


def _dataset_fingerprint(train) -> str:
    import hashlib

    digest = hashlib.sha256()
    for row in train:
        digest.update(json.dumps(row, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()[:16]


def lora_config(recipe: Recipe):
    """The PEFT adapter of a LoRA recipe: every linear layer, so TRL's reference is the base
    with this adapter switched off."""
    from peft import LoraConfig

    return LoraConfig(
        r=recipe.lora.r,
        lora_alpha=recipe.lora.alpha,
        lora_dropout=recipe.lora.dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


def run_fields(
    recipe: Recipe,
    output_dir,
    *,
    cuda: bool,
    bf16: bool,
    evaluate: bool,
    checkpoints: bool,
    progress: bool = True,
) -> dict:
    """The DPOConfig fields that are the run's, not the recipe's: the machine (bf16, CPU), where
    checkpoints go and whether there are any, evaluation, and what never changes (no reports,
    no custom code). Training and the bench both build their DPOConfig from these."""
    return {
        "output_dir": str(output_dir),
        "bf16": bf16,
        "fp16": False,
        "use_cpu": not cuda,
        "per_device_eval_batch_size": max(recipe.value("per_device_train_batch_size"), 8),
        "eval_strategy": "steps" if evaluate else "no",
        "save_strategy": "steps" if checkpoints else "no",
        # Two, so that a pod killed while writing one still leaves a complete one behind.
        "save_total_limit": 2,
        "report_to": "none",
        # TRL loads the reference model itself; never with the folder's own code.
        "trust_remote_code": False,
        "dataloader_num_workers": 0,
        "disable_tqdm": not progress,
    }


def fit_dpo(
    model_path: str,
    dataset_dir,
    out_dir,
    recipe: Recipe,
    checkpoint_dir: str | None = None,
    callbacks=(),
    base_name: str | None = None,
    force: bool = False,
    progress: bool = True,
) -> dict:
    """Train with `recipe`; write the tuned model folder (`from_pretrained`-loadable: merged, or
    the LoRA adapter alone when the recipe says so), its tokenizer, `log_history.json`,
    `train_metrics.json`, `recipe.json` and a model card. Returns the final figures.

    With `checkpoint_dir`, checkpoints are saved there every `save_steps` steps and a
    rerun (a retried pod) resumes from the last complete one. `base_name` is what the user called
    the base model (a gs:// URI or hub id) when `model_path` is a local copy of it.
    """
    import torch
    from trl import DPOTrainer

    from .models import load_causal_lm, load_tokenizer

    began = time.perf_counter()
    base_name = base_name or model_path
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
    tokenizer = load_tokenizer(model_path)
    policy = load_causal_lm(model_path, torch.bfloat16 if bf16 else torch.float32)

    peft_config = lora_config(recipe) if recipe.use_lora else None

    out_dir = Path(out_dir)
    resume_from = None
    scratch = None
    if checkpoint_dir:
        work = Path(checkpoint_dir)
        signature = {
            "base_model": base_name,
            "recipe": recipe.as_dict(),
            "train_pairs": len(train),
            "train_data": _dataset_fingerprint(train),
        }
        resume_from = _claim_checkpoint_dir(work, signature)
    else:
        # Without checkpoints the trainer still wants a folder: a hidden one beside the output,
        # removed after (a killed run leaves it named as a temporary, never as an output).
        scratch = make_scratch(out_dir)
        work = scratch
    try:
        args = recipe.dpo_config(
            **run_fields(
                recipe,
                work,
                cuda=cuda,
                bf16=bf16,
                evaluate=len(val) > 0,
                checkpoints=bool(checkpoint_dir),
                progress=progress,
            )
        )
        trainer = DPOTrainer(
            model=policy,
            args=args,
            train_dataset=train,
            eval_dataset=val if len(val) else None,
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=[_StopOnNonFinite(), _UsualModes(), *callbacks],
        )
        if not len(trainer.train_dataset):
            # TRL drops a pair whose prompt alone fills max_length; with none left, the data
            # loader would fail with a sampler error that names nothing the user set.
            raise UserError(
                f"every one of the {len(train)} training pairs has a prompt longer than "
                f"max_length={recipe.value('max_length')} tokens: raise max_length"
            )
        check_end_of_turn(trainer.train_dataset, tokenizer)
        warn_if_truncated(trainer.train_dataset, recipe.value("max_length"))
        log.info(
            "training: %d pairs, %d validation pairs, recipe %s, device %s, %s",
            len(train),
            len(val),
            recipe.name,
            "cuda" if cuda else "cpu",
            f"resuming from {resume_from}" if resume_from else "from step 0",
        )
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        if trainer.state.global_step == 0:
            raise NothingMade(
                f"training ran no optimizer step on {len(train)} pairs (recipe {recipe.name}): "
                "raise epochs or lower batch_size x gradient_accumulation_steps"
            )
        if len(val):
            trainer.evaluate()
        history = trainer.state.log_history
        metrics = final_metrics(history)
        metrics["train_pairs"] = len(train)
        metrics["validation_pairs"] = len(val)
        metrics["global_step"] = trainer.state.global_step
        metrics["world_size"] = trainer.args.world_size
        metrics["resumed_from_step"] = _step_of(resume_from)
        metrics["train_seconds"] = round(time.perf_counter() - began, 1)
        if not trainer.accelerator.is_main_process:
            return metrics  # under torchrun, one process writes the model

        model = trainer.model
        adapter_only = recipe.use_lora and not recipe.lora.merge
        if recipe.use_lora and recipe.lora.merge:
            model = model.merge_and_unload()
        with atomic_dir(out_dir, force=force, kind="model") as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            write_json(tmp / HISTORY_FILE, history)
            write_json(tmp / TRAIN_METRICS_FILE, metrics)
            write_json(
                tmp / RECIPE_FILE,
                {
                    "base_model": base_name,
                    "adapter_only": adapter_only,
                    # What evaluation scores the model with, whether the recipe set it or not.
                    "beta": recipe.value("beta"),
                    "max_length": recipe.value("max_length"),
                    "recipe": recipe.as_dict(),
                },
            )
            (tmp / "README.md").write_text(
                model_card(base_name, dataset_dir, recipe, metrics, adapter_only), encoding="utf-8"
            )
        if checkpoint_dir:
            # The model is written: its checkpoints (weights and optimizer state, GBs each) would
            # only fill the cache volume. run.json stays, so the folder is not reused by another
            # run.
            clear_workdir(work)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    log.info("tuned model written to %s in %.0fs", out_dir, metrics["train_seconds"])
    return metrics


def _step_of(checkpoint: Path | None) -> int:
    return int(checkpoint.name.rsplit("-", 1)[-1]) if checkpoint else 0


def model_card(
    base: str, dataset_dir, recipe: Recipe, metrics: dict, adapter_only: bool = False
) -> str:
    shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}
    form = (
        "This folder holds the LoRA adapter only; `from_pretrained` loads it on top of the base "
        "model (peft installed).\n\n"
        if adapter_only
        else ""
    )
    data = (
        f"{metrics.get('train_pairs', '?')} training and "
        f"{metrics.get('validation_pairs', '?')} validation preference pairs"
    )
    # The Hub reads `base_model` as a model id: a folder or a gs:// URI goes in the text only.
    hub_id = bool(re.fullmatch(r"[\w.-]+(/[\w.-]+)?", base)) and not os.path.exists(base)
    return (
        "---\n" + (f"base_model: {base}\n" if hub_id else "") + "library_name: transformers\n"
        "tags: [dpo, trl, youtube-titles, dpo-titles]\n"
        "---\n"
        "# YouTube title writer, tuned with DPO\n\n"
        f"Base model `{base}`, tuned with TRL's `DPOTrainer` by dpo-titles on preference pairs "
        f"from `{dataset_dir}` ({data}), split by idea so no validation idea was trained on.\n\n"
        + form
        + "## Use\n\n```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "model = AutoModelForCausalLM.from_pretrained(PATH)\n"
        "tokenizer = AutoTokenizer.from_pretrained(PATH)\n```\n\n"
        "## Recipe\n\n```json\n" + json.dumps(recipe.as_dict(), indent=2) + "\n```\n\n"
        "## Final training figures\n\n```json\n" + json.dumps(shown, indent=2) + "\n```\n"
    )
