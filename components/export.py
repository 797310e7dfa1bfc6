from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def export_results(
    dataset: Input[Dataset],
    model: Input[Model],
    metrics: Output[Metrics],
    dataset_uri: str,
    model_uri: str,
    hub_dataset_repo: str,
    hub_model_repo: str,
    hub_private: bool,
):
    """Send the preference dataset and the tuned model where asked; each is off when empty.

    Args:
        dataset: Dataset folder from the prepare stage.
        model: Tuned model folder from the train stage.
        metrics: How many files went where.
        dataset_uri: gs://bucket/prefix for the dataset folder.
        model_uri: gs://bucket/prefix for the model folder.
        hub_dataset_repo: Hugging Face Hub dataset repo (owner/name), pushed as Parquet with a
            dataset card; needs HF_TOKEN.
        hub_model_repo: Hugging Face Hub model repo (owner/name), with the model card.
        hub_private: Create new Hub repos as private.
    """
    from dpo_titles.errors import exit_on_user_error
    from dpo_titles.exports import Exports
    from dpo_titles.metrics import log_metrics
    from dpo_titles.stages import export

    exports = Exports(dataset_uri, model_uri, hub_dataset_repo, hub_model_repo, hub_private)
    with exit_on_user_error("export"):
        done = export(dataset.path, model.path, exports)
        metrics.metadata.update({k: v for k, v in done.items() if isinstance(v, str)})
        log_metrics(metrics, done)
