from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Model, Output

from components.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def write_report(
    evaluation: Input[Artifact],
    tuned_model: Input[Model],
    candidates: Input[Dataset],
    dataset: Input[Dataset],
    agreement: Input[Artifact],
    report: Output[HTML],
    config: dict = {},
):
    """Write the self-contained HTML report (inline SVG charts), shown in the KFP UI.

    Args:
        evaluation: Folder from the evaluate stage.
        tuned_model: Tuned model folder (its training log history).
        candidates: Candidates CSV (the generator's settings are read from it).
        dataset: Dataset folder (the split's settings are read from it).
        agreement: The judge's agreement with people, from the agreement task.
        report: The HTML report.
        config: Extra entries for the report's configuration table.
    """
    from dpo_titles.errors import exit_on_user_error
    from dpo_titles.stages import report as write

    with exit_on_user_error("report"):
        write(
            evaluation.path,
            tuned_model.path,
            report.path,
            config,
            candidates_path=candidates.path,
            dataset_dir=dataset.path,
            agreement_path=agreement.path,
        )
