from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def prepare_dataset(
    preferences: Input[Dataset],
    dataset: Output[Dataset],
    metrics: Output[Metrics],
    val_fraction: float,
    seed: int,
    pairs: str,
    human_preferences_uri: str,
):
    """Build TRL's conversational preference dataset, split train/validation by idea.

    Args:
        preferences: Preferences CSV from the label stage.
        dataset: Folder: `hf/` (datasets.save_to_disk), train/validation JSONL, split.json.
        metrics: Pairs and ideas per split.
        val_fraction: Share of ideas held out for validation and evaluation.
        seed: Seed of the split (the run's).
        pairs: Which labelled pairs to train on: all, or best (each idea's best title against
            each title it beat).
        human_preferences_uri: Optional human-labelled pairs (CSV: idea, chosen, rejected), a path
            the task can read or gs://bucket/path; they join the judge's pairs.
    """
    from dpo_titles.errors import exit_on_user_error
    from dpo_titles.metrics import log_metrics
    from dpo_titles.settings import Split
    from dpo_titles.stages import prepare

    with exit_on_user_error("prepare"):
        stats = prepare(
            preferences.path,
            dataset.path,
            Split(val_fraction=val_fraction, seed=seed, pairs=pairs),
            human_preferences_path=human_preferences_uri or None,
        )
        log_metrics(metrics, stats)
