"""The pipeline: ideas -> titles -> preferences -> dataset -> DPO -> evaluation -> report.

The one definition that `make compile` compiles for a cluster and `make run-local` runs through
`kfp.local`.
"""

import os

from kfp import dsl, kubernetes

from components.evaluate import evaluate_models
from components.export import export_results
from components.generate import generate_titles
from components.label import label_preferences
from components.preflight import preflight
from components.prepare import prepare_dataset
from components.report import write_report
from components.shards import merge_candidates, merge_preferences, plan_shards
from components.train import train_dpo
from dpo_titles.files import DEFAULT_MAX_INPUT_MB

PIPELINE_NAME = "dpo-titles"
# Most shard pods at once; a constant because ParallelFor takes no parameter for it.
max_parallel_shards = 8
SHM_SIZE = "8Gi"
# The cache volume (Hugging Face cache, API responses, training checkpoints) is compiled in unless
# `CACHE_PVC=` is set empty at compile time: a pod cannot start while its claim is missing, so a
# cluster without the claim from manifests/ compiles without it. Its name is still a run-time
# parameter (`cache_pvc`), defaulting to this.
CACHE_PVC = os.environ.get("CACHE_PVC", "dpo-titles-cache")
CACHE_MOUNT = "/cache" if CACHE_PVC else ""


def _retry(task) -> None:
    """A pod lost to a preempted node or a flaky API is retried: twice, 60 s apart, doubling."""
    task.set_retry(num_retries=2, backoff_duration="60s", backoff_factor=2)


def _mount_cache(task, pvc_name) -> None:
    if CACHE_PVC:
        kubernetes.mount_pvc(task, pvc_name=pvc_name, mount_path=CACHE_MOUNT)


API_KEYS = ("TOGETHER_API_KEY", "GEMINI_API_KEY")
HUB_TOKEN = "HF_TOKEN"


def _use_secret(task, secret_name, keys) -> None:
    """Keys reach only the tasks that use them; optional, so runs without API back ends or Hub
    exports need no Secret at all."""
    kubernetes.use_secret_as_env(
        task, secret_name=secret_name, secret_key_to_env={k: k for k in keys}, optional=True
    )


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Tune a small language model with DPO to write engaging YouTube titles.",
)
def dpo_titles_pipeline(
    ideas_uri: str = "data/ideas.csv",
    base_model: str = "Qwen/Qwen2.5-0.5B-Instruct",
    generator: str = "hf",
    generator_model: str = "",
    titles_per_idea: int = 4,
    temperature: float = 0.9,
    top_p: float = 0.95,
    max_new_tokens: int = 40,
    seed: int = 42,
    label_judge: str = "rubric",
    label_judge_model: str = "",
    label_mode: str = "listwise",
    api_max_in_flight: int = 16,
    api_requests_per_minute: float = 0.0,
    response_cache: str = "",
    cache_pvc: str = CACHE_PVC,
    api_secret: str = "dpo-titles-api-keys",
    shards: int = 1,
    val_fraction: float = 0.2,
    recipe: str = "seed",
    recipe_overrides: dict = {},
    loss_type: str = "",
    beta: str = "",
    learning_rate: str = "",
    lr_scheduler_type: str = "",
    warmup_steps: str = "",
    epochs: str = "",
    batch_size: str = "",
    gradient_accumulation_steps: str = "",
    max_length: str = "",
    train_seed: str = "",
    gradient_checkpointing: str = "",
    precompute_ref_log_probs: str = "",
    lora_merge: str = "",
    checkpoint_dir: str = "",
    eval_judge: str = "rubric",
    eval_judge_model: str = "",
    eval_ideas_uri: str = "",
    human_preferences_uri: str = "",
    export_dataset_uri: str = "",
    export_model_uri: str = "",
    hub_dataset_repo: str = "",
    hub_model_repo: str = "",
    hub_private: bool = True,
    eval_samples_per_idea: int = 4,
    eval_seed: int = 1234,
    eval_reward_pairs: int = 512,
    accelerator_type: str = "nvidia.com/gpu",
    accelerator_count: int = 1,
    gpu_node_selector: dict = {},
    gpu_tolerations: list = [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ],
    gpu_cpu_request: str = "4",
    gpu_memory_request: str = "16G",
    max_input_mb: float = DEFAULT_MAX_INPUT_MB,
):
    """Args:
    ideas_uri: The ideas CSV (column `idea`): a path the tasks can read, or gs://bucket/path.
        Every file or model input below also takes gs:// URIs.
    base_model: Model to tune (hub id or folder); also writes the titles when generator is hf and
        generator_model is empty, so the preference data is on-policy.
    generator: Back end that writes candidate titles.
    generator_model: Model of the generator; empty means the base model.
    titles_per_idea: Candidate titles per idea.
    temperature: Sampling temperature for candidates and evaluation.
    top_p: Nucleus sampling probability mass.
    max_new_tokens: Longest title, in tokens.
    seed: Seed of candidate sampling and of the train/validation split.
    label_judge: Back end that labels preferences (rubric, together, gemini).
    label_judge_model: Model of an API label judge; empty for the back end's default.
    label_mode: listwise (rank each idea's titles twice, shuffled) or pairwise (both orders).
    api_max_in_flight: API back ends: most requests at once per task.
    api_requests_per_minute: API back ends: most requests started per minute (0: no limit).
    response_cache: API back ends: response cache folder; empty for the cache volume's (or none).
    cache_pvc: PersistentVolumeClaim mounted at /cache on the generate, label, train and evaluate
        tasks for the Hugging Face and API response caches (see manifests/); unused when the
        pipeline was compiled with CACHE_PVC empty.
    shards: Number of idea shards the generate and label stages fan out over (parallel pods).
    api_secret: Kubernetes Secret holding TOGETHER_API_KEY, GEMINI_API_KEY and HF_TOKEN (each
        optional; a task gets only the keys it uses).
    val_fraction: Share of ideas held out from training, for validation and evaluation.
    recipe: Training recipe (seed, lora, local), or a recipe YAML path or gs:// URI the preflight
        task can read; preflight resolves it with the overrides below and the train task reads
        that.
    recipe_overrides: Any recipe fields to override, as a JSON object.
    loss_type: Recipe override; empty keeps the recipe's value (so do the next twelve). E.g.
        `sigmoid`, or `sigmoid,sft` to mix in an SFT loss on the chosen titles.
    beta: Recipe override: DPO beta.
    learning_rate: Recipe override: peak learning rate.
    lr_scheduler_type: Recipe override: learning-rate schedule (linear, cosine, ...).
    warmup_steps: Recipe override: warm-up steps.
    epochs: Recipe override: training epochs.
    batch_size: Recipe override: pairs per GPU per step.
    gradient_accumulation_steps: Recipe override: steps accumulated per optimizer update.
    max_length: Recipe override: longest prompt plus title, in tokens.
    train_seed: Recipe override: training seed.
    gradient_checkpointing: Recipe override: true or false.
    precompute_ref_log_probs: Recipe override: true computes reference log-probs once up front.
    lora_merge: Recipe override (lora): false writes the adapter alone instead of a merged model.
    checkpoint_dir: Checkpoint folder on a mounted volume; empty: /cache/checkpoints on the cache
        volume. Each run writes under its job id; a retried training pod resumes there.
    eval_judge: Back end that judges base against tuned (rubric, together, gemini); the report
        warns when it is the label judge's.
    eval_judge_model: Model of an API evaluation judge; empty for the back end's default.
    eval_ideas_uri: Optional extra held-out ideas CSV evaluated beside the validation ideas.
    human_preferences_uri: Optional human-labelled pairs CSV (idea, chosen, rejected) added to the
        judge's pairs before the split.
    export_dataset_uri: gs://bucket/prefix to copy the preference dataset folder to; empty: off.
    export_model_uri: gs://bucket/prefix to copy the tuned model folder to; empty: off.
    hub_dataset_repo: Hugging Face Hub dataset repo (owner/name) to push the dataset to; empty:
        off. Needs HF_TOKEN in the api_secret Secret.
    hub_model_repo: Hugging Face Hub model repo (owner/name) to push the tuned model to.
    hub_private: Create new Hub repos as private.
    eval_samples_per_idea: Titles per held-out idea from each model.
    eval_seed: Sampling seed of the evaluation (same for both models).
    eval_reward_pairs: Validation pairs scored for the DPO implicit reward accuracy (0: skip).
    accelerator_type: Kubernetes resource name of the GPU for training and evaluation.
    accelerator_count: GPUs per training and evaluation task.
    gpu_node_selector: Node selector of the GPU tasks, e.g.
        {"cloud.google.com/gke-accelerator": "nvidia-l4"}.
    gpu_tolerations: Tolerations of the GPU tasks (a list of Kubernetes toleration objects); the
        default tolerates the usual `nvidia.com/gpu` taint of GPU node pools.
    gpu_cpu_request: CPU request of the GPU tasks.
    gpu_memory_request: Memory request of the GPU tasks.
    max_input_mb: Largest ideas, evaluation ideas or human preferences file accepted, in MiB;
        preflight refuses a larger one before reading it.
    """
    checked = preflight(
        ideas_uri=ideas_uri,
        titles_per_idea=titles_per_idea,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        seed=seed,
        val_fraction=val_fraction,
        shards=shards,
        api_max_in_flight=api_max_in_flight,
        api_requests_per_minute=api_requests_per_minute,
        eval_samples_per_idea=eval_samples_per_idea,
        eval_seed=eval_seed,
        eval_reward_pairs=eval_reward_pairs,
        accelerator_count=accelerator_count,
        recipe=recipe,
        recipe_overrides=recipe_overrides,
        loss_type=loss_type,
        beta=beta,
        learning_rate=learning_rate,
        lr_scheduler_type=lr_scheduler_type,
        warmup_steps=warmup_steps,
        epochs=epochs,
        batch_size=batch_size,
        gradient_accumulation_steps=gradient_accumulation_steps,
        max_length=max_length,
        train_seed=train_seed,
        gradient_checkpointing=gradient_checkpointing,
        precompute_ref_log_probs=precompute_ref_log_probs,
        lora_merge=lora_merge,
        max_input_mb=max_input_mb,
        generator=generator,
        label_judge=label_judge,
        label_mode=label_mode,
        eval_judge=eval_judge,
        export_dataset_uri=export_dataset_uri,
        export_model_uri=export_model_uri,
        hub_dataset_repo=hub_dataset_repo,
        hub_model_repo=hub_model_repo,
        eval_ideas_uri=eval_ideas_uri,
        human_preferences_uri=human_preferences_uri,
    ).set_display_name("preflight")
    # Fan-out: each shard of ideas gets its own generate and label pods; with shards=1 this is
    # one pod of each, as before.
    planned = plan_shards(shards=shards).set_display_name("plan shards")
    planned.after(checked)
    with dsl.ParallelFor(planned.output, parallelism=max_parallel_shards) as shard:
        gen = generate_titles(
            ideas=checked.outputs["ideas"],
            provider=generator,
            model=generator_model,
            default_model=base_model,
            n=titles_per_idea,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            seed=seed,
            response_cache=response_cache,
            cache_root=CACHE_MOUNT,
            max_in_flight=api_max_in_flight,
            requests_per_minute=api_requests_per_minute,
            shard_index=shard,
            shard_count=shards,
        ).set_display_name("generate titles")
        lab = label_preferences(
            candidates=gen.outputs["candidates"],
            judge=label_judge,
            mode=label_mode,
            model=label_judge_model,
            response_cache=response_cache,
            cache_root=CACHE_MOUNT,
            max_in_flight=api_max_in_flight,
            requests_per_minute=api_requests_per_minute,
        ).set_display_name("label preferences")
        for api_task in (gen, lab):
            _use_secret(api_task, api_secret, API_KEYS)
            api_task.set_cpu_request("1").set_memory_request("2G")
            _retry(api_task)
    candidates = merge_candidates(parts=dsl.Collected(gen.outputs["candidates"]))
    candidates.set_display_name("merge candidates")
    preferences = merge_preferences(parts=dsl.Collected(lab.outputs["preferences"]))
    preferences.set_display_name("merge preferences")
    prep = prepare_dataset(
        preferences=preferences.outputs["merged"],
        val_fraction=val_fraction,
        seed=seed,
        human_preferences=human_preferences_uri,
    ).set_display_name("prepare dataset")
    trained = train_dpo(
        dataset=prep.outputs["dataset"],
        recipe_file=checked.outputs["recipe_file"],
        base_model=base_model,
        checkpoint_dir=checkpoint_dir,
        run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        num_gpus=accelerator_count,
        cache_root=CACHE_MOUNT,
    ).set_display_name("train DPO")
    evaluated = evaluate_models(
        dataset=prep.outputs["dataset"],
        tuned_model=trained.outputs["model"],
        base_model=base_model,
        judge=eval_judge,
        judge_model=eval_judge_model,
        eval_ideas=eval_ideas_uri,
        samples_per_idea=eval_samples_per_idea,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        seed=eval_seed,
        reward_pairs=eval_reward_pairs,
        response_cache=response_cache,
        max_in_flight=api_max_in_flight,
        requests_per_minute=api_requests_per_minute,
        cache_root=CACHE_MOUNT,
    ).set_display_name("evaluate")
    # Preflight checks every key the run will need, so it sees them all.
    _use_secret(checked, api_secret, (*API_KEYS, HUB_TOKEN))
    _use_secret(evaluated, api_secret, API_KEYS)
    for gpu_task in (trained, evaluated):
        gpu_task.set_accelerator_type(accelerator_type).set_accelerator_limit(accelerator_count)
        gpu_task.set_cpu_request(gpu_cpu_request).set_memory_request(gpu_memory_request)
        kubernetes.add_node_selector_json(gpu_task, gpu_node_selector)
        kubernetes.add_toleration_json(gpu_task, gpu_tolerations)
        # PyTorch data loaders and NCCL need more shared memory than a container's 64 MB;
        # kfp.kubernetes takes the size as a constant, not a parameter.
        kubernetes.empty_dir_mount(
            gpu_task,
            volume_name="dshm",
            mount_path="/dev/shm",
            medium="Memory",
            size_limit=SHM_SIZE,
        )
    for cached in (gen, lab, trained, evaluated):
        _mount_cache(cached, cache_pvc)
    for cpu_task in (checked, prep):
        cpu_task.set_cpu_request("1").set_memory_request("2G")
    # The response cache makes a retried API task cheap, and training resumes from its checkpoint.
    for retried in (trained, evaluated):
        _retry(retried)
    exported = export_results(
        dataset=prep.outputs["dataset"],
        model=trained.outputs["model"],
        dataset_uri=export_dataset_uri,
        model_uri=export_model_uri,
        hub_dataset_repo=hub_dataset_repo,
        hub_model_repo=hub_model_repo,
        hub_private=hub_private,
    ).set_display_name("export")
    exported.set_cpu_request("1").set_memory_request("4G")
    _retry(exported)
    _use_secret(exported, api_secret, (HUB_TOKEN,))
    write_report(
        evaluation=evaluated.outputs["evaluation"],
        tuned_model=trained.outputs["model"],
        candidates=candidates.outputs["merged"],
        dataset=prep.outputs["dataset"],
    ).set_display_name("report")
