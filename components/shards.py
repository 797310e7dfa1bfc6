from typing import List

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def plan_shards(shards: int) -> List[int]:
    """The shard indices the API stages fan out over.

    Args:
        shards: How many shards (parallel pods) the ideas are split into.
    """
    from dpo_titles.errors import exit_on_user_error
    from dpo_titles.shards import shard_plan

    with exit_on_user_error("plan shards"):
        return shard_plan(shards)


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def merge_candidates(parts: Input[List[Dataset]], merged: Output[Dataset]):
    """Concatenate the shards' candidate CSVs.

    Args:
        parts: One candidates CSV per shard.
        merged: All candidates.
    """
    from dpo_titles.errors import exit_on_user_error
    from dpo_titles.shards import merge_csv

    with exit_on_user_error("merge candidates"):
        merge_csv([p.path for p in parts], merged.path)


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def merge_preferences(parts: Input[List[Dataset]], merged: Output[Dataset]):
    """Concatenate the shards' preference CSVs.

    Args:
        parts: One preferences CSV per shard.
        merged: All preference pairs.
    """
    from dpo_titles.errors import exit_on_user_error
    from dpo_titles.shards import merge_csv

    with exit_on_user_error("merge preferences"):
        merge_csv([p.path for p in parts], merged.path)
