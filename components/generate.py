from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def generate_titles(
    ideas: Input[Dataset],
    candidates: Output[Dataset],
    metrics: Output[Metrics],
    provider: str,
    model: str,
    default_model: str,
    titles_per_idea: int,
    seed: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    response_cache: str,
    cache_root: str,
    max_in_flight: int,
    requests_per_minute: float,
    shard_index: int,
    shard_count: int,
):
    """Write `titles_per_idea` candidate titles per idea.

    Args:
        ideas: Validated ideas CSV.
        candidates: One row per cleaned, de-duplicated title (CSV).
        metrics: Counts and timing.
        provider: Back end that writes titles (`hf`).
        model: Model of the provider (hf: a local folder or a hub id).
        default_model: hf only: model used when `model` is empty (the pipeline passes the base
            model, so the candidates are on-policy). API back ends use their own default.
        titles_per_idea: Titles per idea (2 to 100).
        temperature: Sampling temperature.
        top_p: Nucleus sampling probability mass.
        max_new_tokens: Longest answer, in tokens.
        seed: Sampling seed (the run's).
        response_cache: API back ends: folder of the response cache, so a retried task does not
            pay twice; empty: the cache volume's, or none without one.
        cache_root: Mount path of the cache volume (Hugging Face cache, API responses); empty
            or not mounted for none.
        max_in_flight: API back ends: most requests at once.
        requests_per_minute: API back ends: most requests started per minute (0: no limit).
        shard_index: Which shard of the ideas this task writes titles for (0-based).
        shard_count: How many shards the ideas are dealt into (round-robin).
    """
    from dpo_titles.api_calls import CallPolicy
    from dpo_titles.cache import use_cache_volume
    from dpo_titles.errors import exit_on_user_error
    from dpo_titles.metrics import log_metrics
    from dpo_titles.settings import Generation, Sampling
    from dpo_titles.stages import generate

    volume_cache = use_cache_volume(cache_root)
    with exit_on_user_error("generate"):
        generation = Generation(
            provider=provider,
            # The base model writes on-policy candidates; an API back end has its own default.
            model=model or (default_model if provider == "hf" else ""),
            titles_per_idea=titles_per_idea,
            seed=seed,
        )
        stats = generate(
            ideas.path,
            candidates.path,
            generation,
            Sampling(temperature, top_p, max_new_tokens),
            policy=CallPolicy(max_in_flight=max_in_flight, requests_per_minute=requests_per_minute),
            cache_dir=response_cache or volume_cache,
            shard_index=shard_index,
            shard_count=shard_count,
        )
        log_metrics(metrics, stats)
