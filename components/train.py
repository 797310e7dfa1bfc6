from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.images import TRAIN_IMAGE


@dsl.component(base_image=TRAIN_IMAGE, install_kfp_package=False)
def train_dpo(
    dataset: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    base_model: str,
    recipe: str = "seed",
    recipe_overrides: dict = {},
    loss_type: str = "",
    beta: str = "",
    learning_rate: str = "",
    lr_scheduler_type: str = "",
    warmup_steps: str = "",
    epochs: str = "",
    batch_size: str = "",
    gradient_accumulation_steps: str = "",
    max_length: str = "",
    train_seed: str = "",
    gradient_checkpointing: str = "",
    precompute_ref_log_probs: str = "",
    lora_merge: str = "",
    checkpoint_dir: str = "",
    run_id: str = "",
    num_gpus: int = 1,
    cache_root: str = "",
):
    """Tune the base model with TRL's DPOTrainer.

    Args:
        dataset: Dataset folder from the prepare stage.
        model: Tuned model folder, loadable with `from_pretrained`, with log history and card.
        metrics: Final training and validation figures.
        base_model: Model to tune: a hub id or a folder the task can read.
        recipe: Training recipe (`seed`, `lora`, `local`) or a recipe YAML path the task can read.
        recipe_overrides: Any recipe fields to override, e.g. {"lora_r": 32}.
        loss_type: Recipe override (empty: the recipe's), e.g. `sigmoid` or `sigmoid,sft`.
        beta: Recipe override: DPO beta.
        learning_rate: Recipe override: peak learning rate.
        lr_scheduler_type: Recipe override: `linear`, `cosine`, ...
        warmup_steps: Recipe override: warm-up steps.
        epochs: Recipe override: epochs.
        batch_size: Recipe override: pairs per device per step.
        gradient_accumulation_steps: Recipe override: steps accumulated per update.
        max_length: Recipe override: longest prompt plus completion, in tokens.
        train_seed: Recipe override: training seed.
        gradient_checkpointing: Recipe override: `true` or `false`.
        precompute_ref_log_probs: Recipe override: `true` computes the reference log-probs once
            before training instead of a reference forward every step.
        lora_merge: Recipe override (LoRA recipes): `false` writes the adapter alone.
        checkpoint_dir: Folder on a mounted volume for checkpoints; empty: `checkpoints/` on the
            cache volume, or none when no volume is mounted. A retried pod resumes from it.
        run_id: Names this run's checkpoint subfolder (the pipeline passes its job id, so a
            retry of the same run resumes and another run starts fresh).
        num_gpus: GPUs of this task; above 1, training runs under `accelerate`, one process each.
        cache_root: Mount path of the cache volume (Hugging Face cache, checkpoints); empty or
            not mounted for none.
    """
    from dpo_titles.cache import use_cache_volume
    from dpo_titles.errors import exit_on_user_error
    from dpo_titles.metrics import log_metrics
    from dpo_titles.stages import train
    from dpo_titles.train import checkpoint_folder

    volume = use_cache_volume(cache_root)
    fields = {
        "loss_type": loss_type,
        "beta": beta,
        "learning_rate": learning_rate,
        "lr_scheduler_type": lr_scheduler_type,
        "warmup_steps": warmup_steps,
        "epochs": epochs,
        "batch_size": batch_size,
        "gradient_accumulation_steps": gradient_accumulation_steps,
        "max_length": max_length,
        "seed": train_seed,
        "gradient_checkpointing": gradient_checkpointing,
        "precompute_ref_log_probs": precompute_ref_log_probs,
        "lora_merge": lora_merge,
    }
    overrides = {**recipe_overrides, **{k: v for k, v in fields.items() if v != ""}}
    with exit_on_user_error("train"):
        stats = train(
            base_model,
            dataset.path,
            model.path,
            recipe,
            overrides,
            checkpoint_dir=checkpoint_folder(checkpoint_dir, cache_root if volume else "", run_id),
            num_processes=num_gpus,
        )
        model.metadata.update({"base_model": base_model, "recipe": recipe})
        log_metrics(metrics, stats)
