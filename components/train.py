from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.images import TRAIN_IMAGE


@dsl.component(base_image=TRAIN_IMAGE, install_kfp_package=False)
def train_dpo(
    dataset: Input[Dataset],
    recipe_file: Input[Artifact],
    model: Output[Model],
    metrics: Output[Metrics],
    base_model: str,
    checkpoint_dir: str,
    run_id: str,
    gpu_count: int,
    cache_root: str,
):
    """Tune the base model with TRL's DPOTrainer.

    Args:
        dataset: Dataset folder from the prepare stage.
        recipe_file: The recipe with its overrides, checked and resolved by preflight (JSON).
        model: Tuned model folder, loadable with `from_pretrained`, with log history and card.
        metrics: Final training and validation figures.
        base_model: Model to tune: a hub id or a folder the task can read.
        checkpoint_dir: Folder on a mounted volume for checkpoints; empty: `checkpoints/` on the
            cache volume, or none when no volume is mounted. A retried pod resumes from it.
        run_id: Names this run's checkpoint subfolder (the pipeline passes its job id, so a
            retry of the same run resumes and another run starts fresh).
        gpu_count: GPUs of this task; above 1, training runs under `accelerate`, one process each.
        cache_root: Mount path of the cache volume (Hugging Face cache, checkpoints); empty or
            not mounted for none.
    """
    import json

    from dpo_titles.cache import use_cache_volume
    from dpo_titles.errors import exit_on_user_error
    from dpo_titles.metrics import log_metrics
    from dpo_titles.stages import train
    from dpo_titles.train import checkpoint_folder

    volume = use_cache_volume(cache_root)
    with exit_on_user_error("train"):
        stats = train(
            base_model,
            dataset.path,
            model.path,
            recipe_file.path,
            checkpoint_dir=checkpoint_folder(checkpoint_dir, cache_root if volume else "", run_id),
            num_processes=gpu_count,
        )
        with open(recipe_file.path, encoding="utf-8") as fh:
            recipe_name = json.load(fh)["name"]
        model.metadata.update({"base_model": base_model, "recipe": recipe_name})
        log_metrics(metrics, stats)
