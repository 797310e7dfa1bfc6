from kfp import dsl
from kfp.dsl import Dataset, Output

from components.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def preflight(ideas_uri: str, ideas: Output[Dataset], backends: str = ""):
    """Check the inputs before any expensive task starts.

    Args:
        ideas_uri: Path of the ideas CSV (column `idea`), as seen by the task.
        ideas: The validated ideas, as CSV, for the later stages.
        backends: Comma-separated back ends the run will use; their API keys must be set.
    """
    from dpo_titles.errors import exit_on_user_error
    from dpo_titles.stages import validate

    with exit_on_user_error("preflight"):
        validate(ideas_uri, ideas.path, backends.split(","))
