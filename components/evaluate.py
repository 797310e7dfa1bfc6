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
    judge: str,
    judge_model: str,
    eval_ideas_uri: str,
    samples_per_idea: int,
    seed: int,
    reward_pairs: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    response_cache: str,
    max_in_flight: int,
    requests_per_minute: float,
    cache_root: str,
):
    """Base against tuned on held-out ideas, judged blind in both orders.

    Args:
        dataset: Dataset folder; its validation ideas and pairs are the evaluation set.
        tuned_model: Tuned model folder from the train stage.
        evaluation: Folder with comparisons.csv and metrics.json.
        metrics: Win rate with its Wilson 95% interval, compliance, lengths, diversity, flip
            rate, implicit reward accuracy, training figures.
        base_model: The model before tuning.
        judge: Back end that compares titles (`rubric`, `together`, `gemini`).
        judge_model: API judge: model name; empty for the back end's default.
        eval_ideas_uri: Optional extra ideas CSV (column `idea`) the task can read; ideas that were
            trained on are left out.
        samples_per_idea: Titles per idea from each model.
        temperature: Sampling temperature (same for both models).
        top_p: Nucleus sampling probability mass.
        max_new_tokens: Longest answer, in tokens.
        seed: Sampling seed (same for both models).
        reward_pairs: Validation pairs scored for the implicit reward accuracy (0: skip).
        response_cache: API judge: response cache folder; empty for the cache volume's (or none).
        max_in_flight: API judge: most requests at once.
        requests_per_minute: API judge: most requests started per minute (0: no limit).
        cache_root: Mount path of the cache volume (Hugging Face cache, API responses); empty
            or not mounted for none.
    """
    from dpo_titles.api_calls import CallPolicy
    from dpo_titles.cache import use_cache_volume
    from dpo_titles.errors import exit_on_user_error
    from dpo_titles.metrics import log_metrics
    from dpo_titles.settings import Evaluation, Sampling
    from dpo_titles.stages import evaluate

    volume_cache = use_cache_volume(cache_root)
    with exit_on_user_error("evaluate"):
        settings = Evaluation(
            judge=judge,
            judge_model=judge_model,
            samples_per_idea=samples_per_idea,
            seed=seed,
            reward_pairs=reward_pairs,
        )
        result = evaluate(
            base_model,
            tuned_model.path,
            dataset.path,
            evaluation.path,
            settings,
            Sampling(temperature, top_p, max_new_tokens),
            eval_ideas_path=eval_ideas_uri or None,
            policy=CallPolicy(max_in_flight=max_in_flight, requests_per_minute=requests_per_minute),
            cache_dir=response_cache or volume_cache,
        )
        log_metrics(metrics, result)
