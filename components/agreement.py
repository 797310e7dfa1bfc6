from kfp import dsl
from kfp.dsl import Artifact, Metrics, Output

from components.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def measure_agreement(
    agreement: Output[Artifact],
    metrics: Output[Metrics],
    human_preferences_uri: str,
    judge: str,
    mode: str,
    model: str,
    seed: int,
    response_cache: str,
    cache_root: str,
    max_in_flight: int,
    requests_per_minute: float,
):
    """Have the label judge label the human-labelled pairs and measure how far it agrees with
    the people; with no human pairs, records that there is nothing to measure.

    Args:
        agreement: The figures (JSON): agreement, Cohen's kappa with its interval, flips,
            can't-tell rates, confusion table.
        metrics: The same figures, as numbers.
        human_preferences_uri: Human-labelled pairs CSV (idea, chosen, rejected, verdict); empty
            for none.
        judge: The label stage's judge.
        mode: The label stage's mode (listwise or pairwise).
        model: API judges: model name; empty for the back end's default.
        seed: Seed of the pairs' order and of the bootstrap.
        response_cache: API judges: folder of the response cache; empty: the cache volume's, or
            none without one.
        cache_root: Mount path of the cache volume; empty or not mounted for none.
        max_in_flight: API judges: most requests at once.
        requests_per_minute: API judges: most requests started per minute (0: no limit).
    """
    from dpo_titles.api_calls import CallPolicy
    from dpo_titles.cache import use_cache_volume
    from dpo_titles.errors import exit_on_user_error
    from dpo_titles.metrics import log_metrics
    from dpo_titles.settings import Agreement, Labelling
    from dpo_titles.stages import agreement as measure

    volume_cache = use_cache_volume(cache_root)
    with exit_on_user_error("agreement"):
        result = measure(
            human_preferences_uri,
            agreement.path,
            Labelling(judge=judge, mode=mode, model=model),
            Agreement(seed=seed),
            policy=CallPolicy(max_in_flight=max_in_flight, requests_per_minute=requests_per_minute),
            cache_dir=response_cache or volume_cache,
        )
        log_metrics(metrics, result)
