from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def label_preferences(
    candidates: Input[Dataset],
    preferences: Output[Dataset],
    metrics: Output[Metrics],
    judge: str,
    mode: str,
    model: str,
    response_cache: str,
    cache_root: str,
    max_in_flight: int,
    requests_per_minute: float,
):
    """Judge every pair of an idea's titles in both orders; keep only consistent verdicts.

    Args:
        candidates: Candidates CSV from the generate stage.
        preferences: One row per labelled pair: idea, chosen, rejected, judge, rationale (CSV).
        metrics: Pairs, calls, ties, position flips.
        judge: Back end that compares titles (`rubric`, `together`, `gemini`).
        mode: `listwise` (rank all titles of an idea twice, shuffled) or `pairwise` (each pair
            in both orders); either way only verdicts that survive the swap are kept.
        model: API judges: model name; empty for the back end's default.
        response_cache: API judges: folder of the response cache; empty: the cache volume's, or
            none without one.
        cache_root: Mount path of the cache volume (Hugging Face cache, API responses); empty
            or not mounted for none.
        max_in_flight: API judges: most requests at once.
        requests_per_minute: API judges: most requests started per minute (0: no limit).
    """
    from dpo_titles.api_calls import CallPolicy
    from dpo_titles.cache import use_cache_volume
    from dpo_titles.errors import exit_on_user_error
    from dpo_titles.metrics import log_metrics
    from dpo_titles.settings import Labelling
    from dpo_titles.stages import label

    volume_cache = use_cache_volume(cache_root)
    with exit_on_user_error("label"):
        stats = label(
            candidates.path,
            preferences.path,
            Labelling(judge=judge, mode=mode, model=model),
            policy=CallPolicy(max_in_flight=max_in_flight, requests_per_minute=requests_per_minute),
            cache_dir=response_cache or volume_cache,
        )
        log_metrics(metrics, stats)
