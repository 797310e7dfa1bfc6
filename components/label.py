from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def label_preferences(
    candidates: Input[Dataset],
    preferences: Output[Dataset],
    metrics: Output[Metrics],
    judge: str = "rubric",
):
    """Judge every pair of an idea's titles in both orders; keep only consistent verdicts.

    Args:
        candidates: Candidates CSV from the generate stage.
        preferences: One row per labelled pair: idea, chosen, rejected, judge, rationale (CSV).
        metrics: Pairs, calls, ties, position flips.
        judge: Back end that compares titles (`rubric`).
    """
    from dpo_titles.errors import exit_on_user_error
    from dpo_titles.metrics import log_metrics
    from dpo_titles.stages import label

    with exit_on_user_error("label"):
        log_metrics(metrics, label(candidates.path, preferences.path, judge))
