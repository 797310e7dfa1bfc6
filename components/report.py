from kfp import dsl
from kfp.dsl import HTML, Artifact, Input, Model, Output

from components.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def write_report(
    evaluation: Input[Artifact],
    tuned_model: Input[Model],
    report: Output[HTML],
    config: dict = {},
):
    """Write the self-contained HTML report (inline SVG charts), shown in the KFP UI.

    Args:
        evaluation: Folder from the evaluate stage.
        tuned_model: Tuned model folder (its training log history).
        report: The HTML report.
        config: The run's configuration, shown in the report.
    """
    from dpo_titles.errors import exit_on_user_error
    from dpo_titles.stages import report as write

    with exit_on_user_error("report"):
        write(evaluation.path, tuned_model.path, report.path, config)
