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
    cache_root: str = "",
):
    """Tune the base model with TRL's DPOTrainer.

    Args:
        dataset: Dataset folder from the prepare stage.
        model: Tuned model folder, loadable with `from_pretrained`, with log history and card.
        metrics: Final training and validation figures.
        base_model: Model to tune: a hub id or a folder the task can read.
        recipe: Training recipe (`seed`, `local`) from the package's recipes.
        recipe_overrides: Recipe fields to override, e.g. {"learning_rate": 5e-6}.
        cache_root: Mount path of the cache volume (Hugging Face cache); empty or not mounted
            for none.
    """
    from dpo_titles.cache import use_cache_volume
    from dpo_titles.errors import exit_on_user_error
    from dpo_titles.metrics import log_metrics
    from dpo_titles.stages import train

    use_cache_volume(cache_root)
    with exit_on_user_error("train"):
        stats = train(base_model, dataset.path, model.path, recipe, recipe_overrides)
        model.metadata.update({"base_model": base_model, "recipe": recipe})
        log_metrics(metrics, stats)
