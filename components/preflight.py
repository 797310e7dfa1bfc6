from kfp import dsl
from kfp.dsl import Dataset, Output

from components.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def preflight(
    ideas_uri: str,
    ideas: Output[Dataset],
    backends: str = "",
    export_dataset_uri: str = "",
    export_model_uri: str = "",
    hub_dataset_repo: str = "",
    hub_model_repo: str = "",
    eval_ideas_uri: str = "",
    human_preferences_uri: str = "",
):
    """Check the inputs before any expensive task starts.

    Args:
        ideas_uri: The ideas CSV (column `idea`): a path the task can read or gs://bucket/path.
        ideas: The validated ideas, as CSV, for the later stages.
        backends: Comma-separated back ends the run will use; their API keys must be set.
        export_dataset_uri: Planned dataset export (gs://); checked now, not at the end.
        export_model_uri: Planned model export (gs://).
        hub_dataset_repo: Planned Hub dataset repo; a valid name and HF_TOKEN are required.
        hub_model_repo: Planned Hub model repo.
        eval_ideas_uri: Optional evaluation ideas CSV; read and checked now.
        human_preferences_uri: Optional human-labelled pairs CSV; its columns are checked now.
    """
    from dpo_titles.errors import exit_on_user_error
    from dpo_titles.exports import Exports
    from dpo_titles.stages import validate

    exports = Exports(export_dataset_uri, export_model_uri, hub_dataset_repo, hub_model_repo)
    with exit_on_user_error("preflight"):
        validate(
            ideas_uri,
            ideas.path,
            backends.split(","),
            exports,
            eval_ideas_path=eval_ideas_uri or None,
            human_preferences_path=human_preferences_uri or None,
        )
