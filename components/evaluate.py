from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.images import TRAIN_IMAGE


@dsl.component(base_image=TRAIN_IMAGE, install_kfp_package=False)
def evaluate_models(
    dataset: Input[Dataset],
    tuned_model: Input[Model],
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    base_model: str,
    judge: str = "rubric",
    samples_per_idea: int = 4,
    temperature: float = 0.9,
    top_p: float = 0.95,
    max_new_tokens: int = 40,
    seed: int = 1234,
    cache_root: str = "",
):
    """Base against tuned on the held-out ideas, judged blind in both orders.

    Args:
        dataset: Dataset folder; its validation ideas are the evaluation set.
        tuned_model: Tuned model folder from the train stage.
        evaluation: Folder with comparisons.csv and metrics.json.
        metrics: Win rate with its Wilson 95% interval, compliance, lengths, training figures.
        base_model: The model before tuning.
        judge: Back end that compares titles (`rubric`).
        samples_per_idea: Titles per idea from each model.
        temperature: Sampling temperature (same for both models).
        top_p: Nucleus sampling probability mass.
        max_new_tokens: Longest answer, in tokens.
        seed: Sampling seed (same for both models).
        cache_root: Mount path of the cache volume (Hugging Face cache); empty or not mounted
            for none.
    """
    from dpo_titles.cache import use_cache_volume
    from dpo_titles.errors import exit_on_user_error
    from dpo_titles.metrics import log_metrics
    from dpo_titles.stages import evaluate

    use_cache_volume(cache_root)
    with exit_on_user_error("evaluate"):
        result = evaluate(
            base_model,
            tuned_model.path,
            dataset.path,
            evaluation.path,
            judge,
            samples_per_idea,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            seed=seed,
        )
        log_metrics(metrics, result)
