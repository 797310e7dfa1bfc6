from kfp import dsl
from kfp.dsl import Artifact, Dataset, Output

from components.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def preflight(
    ideas: Output[Dataset],
    recipe_file: Output[Artifact],
    ideas_uri: str,
    seed: int,
    shards: int,
    max_input_mb: float,
    gen_provider: str,
    gen_model: str,
    gen_titles_per_idea: int,
    sample_temperature: float,
    sample_top_p: float,
    sample_max_new_tokens: int,
    label_judge: str,
    label_model: str,
    label_mode: str,
    api_max_in_flight: int,
    api_requests_per_minute: float,
    prepare_val_fraction: float,
    prepare_pairs: str,
    prepare_human_preferences_uri: str,
    train_recipe: str,
    train_overrides: dict,
    train_loss_type: str,
    train_beta: str,
    train_learning_rate: str,
    train_lr_scheduler_type: str,
    train_warmup_steps: str,
    train_num_train_epochs: str,
    train_per_device_train_batch_size: str,
    train_gradient_accumulation_steps: str,
    train_max_length: str,
    train_seed: str,
    train_activation_checkpointing: str,
    train_precompute_ref_log_probs: str,
    train_lora_merge: str,
    train_backend: str,
    train_timeout_minutes: int,
    eval_judge: str,
    eval_judge_model: str,
    eval_ideas_uri: str,
    eval_samples_per_idea: int,
    eval_seed: int,
    eval_reward_pairs: int,
    gpu_count: int,
    gpu_num_nodes: int,
    export_dataset_uri: str,
    export_model_uri: str,
    export_hub_dataset_repo: str,
    export_hub_model_repo: str,
):
    """Check the whole run before any expensive task starts: inputs, keys, destinations, every
    setting, and the training recipe with its overrides. Its parameters are the pipeline's, by
    the same names (see the pipeline's docstring for each); it checks them with the settings
    the stages use.

    Args:
        ideas: The validated ideas, as CSV, for the later stages.
        recipe_file: The resolved training recipe (JSON) the train task reads.
        ideas_uri: The ideas CSV (column `idea`): a path the task can read or gs://bucket/path.
        seed: The run's seed (generate, split).
        shards: Shards of the fan-out (1 to 256).
        max_input_mb: Largest ideas, evaluation ideas or human preferences file accepted, MiB.
        gen_provider: Back end that writes titles; known, and its API key set.
        gen_model: Its model.
        gen_titles_per_idea: Titles per idea (2 to 100).
        sample_temperature: Sampling temperature (0, or 0.01 to 100).
        sample_top_p: Nucleus probability mass (more than 0, at most 1).
        sample_max_new_tokens: Longest title, in tokens (1 to 1,024).
        label_judge: Back end that labels; known, and its API key set.
        label_model: Its model.
        label_mode: listwise or pairwise.
        api_max_in_flight: API requests at once (at least 1).
        api_requests_per_minute: API requests per minute (0 or more).
        prepare_val_fraction: Share of ideas held out (between 0 and 1).
        prepare_pairs: all or best.
        prepare_human_preferences_uri: Optional human-labelled pairs CSV; its rows are checked.
        train_recipe: Training recipe (original, lora, local), a YAML path this task can read,
            or gs://.
        train_overrides: Any recipe fields to override, as a JSON object.
        train_loss_type: Recipe override; empty keeps the recipe's value (so do the next twelve).
        train_beta: Recipe override.
        train_learning_rate: Recipe override.
        train_lr_scheduler_type: Recipe override.
        train_warmup_steps: Recipe override.
        train_num_train_epochs: Recipe override.
        train_per_device_train_batch_size: Recipe override.
        train_gradient_accumulation_steps: Recipe override.
        train_max_length: Recipe override.
        train_seed: Recipe override.
        train_activation_checkpointing: Recipe override.
        train_precompute_ref_log_probs: Recipe override.
        train_lora_merge: Recipe override (lora.merge).
        train_backend: pod or trainjob.
        train_timeout_minutes: trainjob: the TrainJob's time limit (at least 1).
        eval_judge: Back end that judges the evaluation; known, and its API key set.
        eval_judge_model: Its model.
        eval_ideas_uri: Optional evaluation ideas CSV; read and checked now.
        eval_samples_per_idea: Titles per idea from each model (at least 1).
        eval_seed: The evaluation's seed.
        eval_reward_pairs: Validation pairs for the implicit reward (0 or more).
        gpu_count: GPUs per GPU task (at least 1).
        gpu_num_nodes: trainjob: nodes of the TrainJob (at least 1).
        export_dataset_uri: Planned dataset export (gs://); checked now, not at the end.
        export_model_uri: Planned model export (gs://).
        export_hub_dataset_repo: Planned Hub dataset repo; a valid name and HF_TOKEN needed.
        export_hub_model_repo: Planned Hub model repo.
    """
    given = dict(locals())  # the parameters by name: what preflight checks
    from dpo_titles.errors import exit_on_user_error
    from dpo_titles.files import input_limit
    from dpo_titles.preflight import preflight

    with exit_on_user_error("preflight"), input_limit(max_input_mb):
        preflight(given, ideas.path, recipe_file.path)
