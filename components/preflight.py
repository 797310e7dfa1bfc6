from kfp import dsl
from kfp.dsl import Artifact, Dataset, Output

from components.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def preflight(
    ideas_uri: str,
    ideas: Output[Dataset],
    recipe_file: Output[Artifact],
    titles_per_idea: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    seed: int,
    val_fraction: float,
    shards: int,
    api_max_in_flight: int,
    api_requests_per_minute: float,
    eval_samples_per_idea: int,
    eval_seed: int,
    eval_reward_pairs: int,
    accelerator_count: int,
    recipe: str,
    recipe_overrides: dict,
    loss_type: str,
    beta: str,
    learning_rate: str,
    lr_scheduler_type: str,
    warmup_steps: str,
    epochs: str,
    batch_size: str,
    gradient_accumulation_steps: str,
    max_length: str,
    train_seed: str,
    gradient_checkpointing: str,
    precompute_ref_log_probs: str,
    lora_merge: str,
    max_input_mb: float,
    generator: str,
    label_judge: str,
    label_mode: str,
    eval_judge: str,
    export_dataset_uri: str = "",
    export_model_uri: str = "",
    hub_dataset_repo: str = "",
    hub_model_repo: str = "",
    eval_ideas_uri: str = "",
    human_preferences_uri: str = "",
):
    """Check the whole run before any expensive task starts: inputs, keys, destinations, every
    numeric setting, and the training recipe with its overrides.

    Args:
        ideas_uri: The ideas CSV (column `idea`): a path the task can read or gs://bucket/path.
        ideas: The validated ideas, as CSV, for the later stages.
        recipe_file: The resolved training recipe (JSON) the train task reads.
        titles_per_idea: Checked as the generate stage will (at least 2).
        temperature: Checked as generate and evaluate will (0 or more).
        top_p: Checked (more than 0, at most 1).
        max_new_tokens: Checked (at least 1).
        seed: Checked (0 or more).
        val_fraction: Checked (between 0 and 1).
        shards: Checked (1 to 256).
        api_max_in_flight: Checked (at least 1).
        api_requests_per_minute: Checked (0 or more).
        eval_samples_per_idea: Checked (at least 1).
        eval_seed: Checked (0 or more).
        eval_reward_pairs: Checked (0 or more).
        accelerator_count: Checked (at least 1).
        recipe: Training recipe (seed, lora, local), a YAML path this task can read, or gs://.
        recipe_overrides: Any recipe fields to override, as a JSON object.
        loss_type: Recipe override; empty keeps the recipe's value (so do the next twelve).
        beta: Recipe override.
        learning_rate: Recipe override.
        lr_scheduler_type: Recipe override.
        warmup_steps: Recipe override.
        epochs: Recipe override.
        batch_size: Recipe override.
        gradient_accumulation_steps: Recipe override.
        max_length: Recipe override.
        train_seed: Recipe override of the recipe's `seed`.
        gradient_checkpointing: Recipe override.
        precompute_ref_log_probs: Recipe override.
        lora_merge: Recipe override.
        max_input_mb: Largest ideas, evaluation ideas or human preferences file accepted, MiB.
        generator: Back end that writes titles; known, and its API key set.
        label_judge: Back end that labels preferences; known, and its API key set.
        label_mode: listwise or pairwise.
        eval_judge: Back end that judges the evaluation; known, and its API key set.
        export_dataset_uri: Planned dataset export (gs://); checked now, not at the end.
        export_model_uri: Planned model export (gs://).
        hub_dataset_repo: Planned Hub dataset repo; a valid name and HF_TOKEN are required.
        hub_model_repo: Planned Hub model repo.
        eval_ideas_uri: Optional evaluation ideas CSV; read and checked now.
        human_preferences_uri: Optional human-labelled pairs CSV; its rows are checked now.
    """
    given = dict(locals())  # the parameters by name, for the settings below
    from dpo_titles.errors import exit_on_user_error
    from dpo_titles.exports import Exports
    from dpo_titles.files import input_limit
    from dpo_titles.preflight import RunSettings, TrainSettings, preflight

    run, train = RunSettings.from_parameters(given), TrainSettings.from_parameters(given)
    exports = Exports(export_dataset_uri, export_model_uri, hub_dataset_repo, hub_model_repo)
    with exit_on_user_error("preflight"), input_limit(max_input_mb):
        preflight(
            ideas_uri,
            ideas.path,
            recipe_file.path,
            run,
            train,
            exports=exports,
            eval_ideas_uri=eval_ideas_uri or None,
            human_preferences_uri=human_preferences_uri or None,
        )
