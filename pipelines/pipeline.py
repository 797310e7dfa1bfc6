"""The pipeline: ideas -> titles -> preferences -> dataset -> DPO -> evaluation -> report.

The one definition that `make compile` compiles for a cluster and `make run-local` runs through
`kfp.local`.
"""

import os

from kfp import dsl, kubernetes

from components.agreement import measure_agreement
from components.evaluate import evaluate_models
from components.export import export_results
from components.generate import generate_titles
from components.images import TRAIN_IMAGE
from components.label import label_preferences
from components.preflight import preflight
from components.prepare import prepare_dataset
from components.report import write_report
from components.shards import merge_candidates, merge_preferences, plan_shards
from components.train import train_dpo
from components.trainjob import train_trainjob
from dpo_titles.api_calls import CallPolicy
from dpo_titles.files import DEFAULT_MAX_INPUT_MB
from dpo_titles.hub import TOKEN_ENV
from dpo_titles.providers import API_KEYS
from dpo_titles.settings import Evaluation, Generation, Labelling, Sampling, Split
from dpo_titles.trainjob import (
    DEFAULT_BACKEND,
    DEFAULT_RUNTIME,
    DEFAULT_TIMEOUT_MINUTES,
    SHM_SIZE,
)

PIPELINE_NAME = "dpo-titles"
# Most shard pods at once; a constant because ParallelFor takes no parameter for it.
max_parallel_shards = 8
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


# One key per back end that needs one (providers.BACKENDS), and the Hub's token.
HUB_TOKEN = TOKEN_ENV


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
    seed: int = Generation.seed,
    shards: int = 1,
    max_input_mb: float = DEFAULT_MAX_INPUT_MB,
    api_secret: str = "dpo-titles-api-keys",
    cache_pvc: str = CACHE_PVC,
    gen_provider: str = Generation.provider,
    gen_model: str = Generation.model,
    gen_titles_per_idea: int = Generation.titles_per_idea,
    sample_temperature: float = Sampling.temperature,
    sample_top_p: float = Sampling.top_p,
    sample_max_new_tokens: int = Sampling.max_new_tokens,
    label_judge: str = Labelling.judge,
    label_model: str = Labelling.model,
    label_mode: str = Labelling.mode,
    api_max_in_flight: int = CallPolicy.max_in_flight,
    api_requests_per_minute: float = CallPolicy.requests_per_minute,
    api_response_cache: str = "",
    prepare_val_fraction: float = Split.val_fraction,
    prepare_pairs: str = Split.pairs,
    prepare_human_preferences_uri: str = "",
    train_recipe: str = "original",
    train_overrides: dict = {},
    train_loss_type: str = "",
    train_beta: str = "",
    train_learning_rate: str = "",
    train_lr_scheduler_type: str = "",
    train_warmup_steps: str = "",
    train_num_train_epochs: str = "",
    train_per_device_train_batch_size: str = "",
    train_gradient_accumulation_steps: str = "",
    train_max_length: str = "",
    train_seed: str = "",
    train_activation_checkpointing: str = "",
    train_precompute_ref_log_probs: str = "",
    train_lora_merge: str = "",
    train_checkpoint_dir: str = "",
    train_backend: str = DEFAULT_BACKEND,
    train_runtime: str = DEFAULT_RUNTIME,
    train_timeout_minutes: int = DEFAULT_TIMEOUT_MINUTES,
    train_namespace: str = "",
    eval_judge: str = Evaluation.judge,
    eval_judge_model: str = Evaluation.judge_model,
    eval_ideas_uri: str = "",
    eval_samples_per_idea: int = Evaluation.samples_per_idea,
    eval_seed: int = Evaluation.seed,
    eval_reward_pairs: int = Evaluation.reward_pairs,
    gpu_type: str = "nvidia.com/gpu",
    gpu_count: int = 1,
    gpu_num_nodes: int = 1,
    gpu_node_selector: dict = {},
    gpu_tolerations: list = [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ],
    gpu_cpu_request: str = "4",
    gpu_memory_request: str = "16G",
    export_dataset_uri: str = "",
    export_model_uri: str = "",
    export_hub_dataset_repo: str = "",
    export_hub_model_repo: str = "",
    export_hub_private: bool = True,
):
    """Tune a small language model with DPO to write engaging YouTube titles.

    Args:
        ideas_uri: The ideas CSV (column `idea`): a path the tasks can read, or gs://bucket/path.
            Every file or model input below also takes gs:// URIs.
        base_model: Model to tune (hub id or folder); also writes the titles when gen_provider is
            hf and gen_model is empty, so the preference data is on-policy.
        seed: The run's random seed: candidate sampling and the train/validation split.
        shards: Number of idea shards the generate and label stages fan out over (parallel pods).
        max_input_mb: Largest ideas, evaluation ideas or human preferences file accepted, in MiB;
            preflight refuses a larger one before reading it.
        api_secret: Kubernetes Secret holding the back ends' API keys and HF_TOKEN (each optional; a
            task gets only the keys it uses; `dpo-titles backends` lists them).
        cache_pvc: PersistentVolumeClaim mounted at /cache on the generate, label, train and
            evaluate tasks for the Hugging Face and API response caches (see manifests/); unused
            when the pipeline was compiled with CACHE_PVC empty.
        gen_provider: Back end that writes candidate titles.
        gen_model: Model of that back end; empty means the base model (hf) or its default (APIs).
        gen_titles_per_idea: Candidate titles per idea.
        sample_temperature: Sampling temperature of the candidates and of the evaluation; 0 is
            deterministic (a beam search of the best titles).
        sample_top_p: Nucleus sampling probability mass.
        sample_max_new_tokens: Longest title, in tokens.
        label_judge: Back end that labels preferences.
        label_model: Model of an API label judge; empty for the back end's default.
        label_mode: listwise (rank each idea's titles twice, shuffled) or pairwise (both orders).
        api_max_in_flight: API back ends: most requests at once per task.
        api_requests_per_minute: API back ends: most requests started per minute (0: no limit).
        api_response_cache: API back ends: response cache folder; empty for the cache volume's (or
            none).
        prepare_val_fraction: Share of ideas held out from training, for validation and evaluation.
        prepare_pairs: Which labelled pairs train: all, or best (each idea's best title, the one
            that won most, against each title it beat: the chosen titles are the best written).
        prepare_human_preferences_uri: Optional human-labelled pairs CSV (idea, chosen, rejected;
            e.g. from `dpo-titles annotate`) added to the judge's pairs before the split; the
            label judge also labels them, and its agreement with people goes in the report.
        train_recipe: Training recipe (original, lora, local), or a recipe YAML path or gs://
            URI the preflight task can read; preflight resolves it with the overrides below and
            the train task reads that.
        train_overrides: Any recipe fields to override, as a JSON object of DPOConfig fields (and
            lora.r, lora.merge, ...).
        train_loss_type: Recipe override (DPOConfig.loss_type); empty keeps the recipe's value (so
            do the next twelve). E.g. `sigmoid`, or `sigmoid,sft` to mix in an SFT loss.
        train_beta: Recipe override: DPO beta.
        train_learning_rate: Recipe override: peak learning rate.
        train_lr_scheduler_type: Recipe override: learning-rate schedule (linear, cosine, ...).
        train_warmup_steps: Recipe override: warm-up steps.
        train_num_train_epochs: Recipe override: training epochs.
        train_per_device_train_batch_size: Recipe override: pairs per GPU per step.
        train_gradient_accumulation_steps: Recipe override: steps accumulated per optimizer update.
        train_max_length: Recipe override: longest prompt plus title, in tokens.
        train_seed: Recipe override: training seed.
        train_activation_checkpointing: Recipe override: true or false.
        train_precompute_ref_log_probs: Recipe override: true computes reference log-probs once.
        train_lora_merge: Recipe override (LoRA recipes): false writes the adapter alone.
        train_checkpoint_dir: Checkpoint folder on a mounted volume; empty: /cache/checkpoints on
            the cache volume. Each run writes under its job id; a retried training pod resumes
            there.
        train_backend: Where training runs: pod (the train task itself, one node) or trainjob (a
            Kubeflow Trainer v2 TrainJob of gpu_num_nodes nodes x gpu_count GPUs, created and
            watched by a CPU task; needs Trainer, manifests/rbac.yaml and the cache volume).
        train_runtime: trainjob: the ClusterTrainingRuntime of the TrainJob (a torch runtime).
        train_timeout_minutes: trainjob: longest the TrainJob may run before it is stopped and
            the task fails.
        train_namespace: trainjob: namespace of the TrainJob; empty: the pipeline's own.
        eval_judge: Back end that judges base against tuned; the report warns when it is the label
            judge's.
        eval_judge_model: Model of an API evaluation judge; empty for the back end's default.
        eval_ideas_uri: Optional extra held-out ideas CSV evaluated beside the validation ideas.
        eval_samples_per_idea: Titles per held-out idea from each model.
        eval_seed: Sampling seed of the evaluation (same for both models).
        eval_reward_pairs: Validation pairs scored for the DPO implicit reward accuracy (0: skip).
        gpu_type: Kubernetes resource name of the GPU for training and evaluation.
        gpu_count: GPUs per training and evaluation task (per node with train_backend=trainjob).
        gpu_num_nodes: trainjob: training nodes (the TrainJob's numNodes), each with gpu_count
            GPUs; the pod backend trains on one.
        gpu_node_selector: Node selector of the GPU tasks, e.g.
            {"cloud.google.com/gke-accelerator": "nvidia-l4"}.
        gpu_tolerations: Tolerations of the GPU tasks (a list of Kubernetes toleration objects); the
            default tolerates the usual `nvidia.com/gpu` taint of GPU node pools.
        gpu_cpu_request: CPU request of the GPU tasks.
        gpu_memory_request: Memory request of the GPU tasks.
        export_dataset_uri: gs://bucket/prefix to copy the preference dataset folder to; empty: off.
        export_model_uri: gs://bucket/prefix to copy the tuned model folder to; empty: off.
        export_hub_dataset_repo: Hugging Face Hub dataset repo (owner/name) to push the dataset to;
            empty: off. Needs HF_TOKEN in the api_secret Secret.
        export_hub_model_repo: Hugging Face Hub model repo (owner/name) to push the tuned model to.
        export_hub_private: Create new Hub repos as private.
    """
    given = dict(locals())  # the parameters by name: preflight checks them all, by those names
    checked = preflight(
        **{name: given[name] for name in preflight.component_spec.inputs if name in given}
    ).set_display_name("preflight")
    # Fan-out: each shard of ideas gets its own generate and label pods; with shards=1 this is
    # one pod of each, as before.
    planned = plan_shards(shards=shards).set_display_name("plan shards")
    planned.after(checked)
    with dsl.ParallelFor(planned.output, parallelism=max_parallel_shards) as shard:
        gen = generate_titles(
            ideas=checked.outputs["ideas"],
            provider=gen_provider,
            model=gen_model,
            default_model=base_model,
            titles_per_idea=gen_titles_per_idea,
            seed=seed,
            temperature=sample_temperature,
            top_p=sample_top_p,
            max_new_tokens=sample_max_new_tokens,
            response_cache=api_response_cache,
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
            model=label_model,
            response_cache=api_response_cache,
            cache_root=CACHE_MOUNT,
            max_in_flight=api_max_in_flight,
            requests_per_minute=api_requests_per_minute,
        ).set_display_name("label preferences")
        for api_task in (gen, lab):
            _use_secret(api_task, api_secret, API_KEYS)
            api_task.set_cpu_request("1").set_memory_request("2G")
            _retry(api_task)
    # Once per run, beside the shards: the label judge on the pairs people labelled.
    agreed = measure_agreement(
        human_preferences_uri=prepare_human_preferences_uri,
        judge=label_judge,
        mode=label_mode,
        model=label_model,
        seed=seed,
        response_cache=api_response_cache,
        cache_root=CACHE_MOUNT,
        max_in_flight=api_max_in_flight,
        requests_per_minute=api_requests_per_minute,
    ).set_display_name("judge agreement")
    agreed.after(checked)
    _use_secret(agreed, api_secret, API_KEYS)
    agreed.set_cpu_request("1").set_memory_request("2G")
    _retry(agreed)
    candidates = merge_candidates(parts=dsl.Collected(gen.outputs["candidates"]))
    candidates.set_display_name("merge candidates")
    preferences = merge_preferences(parts=dsl.Collected(lab.outputs["preferences"]))
    preferences.set_display_name("merge preferences")
    prep = prepare_dataset(
        preferences=preferences.outputs["merged"],
        val_fraction=prepare_val_fraction,
        seed=seed,
        pairs=prepare_pairs,
        human_preferences_uri=prepare_human_preferences_uri,
    ).set_display_name("prepare dataset")
    # Training runs in the train task itself (pod) or on a Kubeflow Trainer TrainJob that a CPU
    # task creates and watches (trainjob); the tasks after it take whichever model was made.
    with dsl.If(train_backend == "trainjob", name="train on a TrainJob"):
        on_trainjob = train_trainjob(
            dataset=prep.outputs["dataset"],
            recipe_file=checked.outputs["recipe_file"],
            base_model=base_model,
            checkpoint_dir=train_checkpoint_dir,
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            train_image=TRAIN_IMAGE,
            runtime=train_runtime,
            num_nodes=gpu_num_nodes,
            gpu_count=gpu_count,
            gpu_type=gpu_type,
            cpu_request=gpu_cpu_request,
            memory_request=gpu_memory_request,
            node_selector=gpu_node_selector,
            tolerations=gpu_tolerations,
            timeout_minutes=train_timeout_minutes,
            namespace=train_namespace,
            cache_pvc=cache_pvc,
            cache_root=CACHE_MOUNT,
        ).set_display_name("train DPO (TrainJob)")
        on_trainjob.set_cpu_request("1").set_memory_request("2G")
        # A retried task finds the TrainJob its first attempt created and waits for it.
        _retry(on_trainjob)
        _mount_cache(on_trainjob, cache_pvc)
    with dsl.Else(name="train in the task"):
        trained = train_dpo(
            dataset=prep.outputs["dataset"],
            recipe_file=checked.outputs["recipe_file"],
            base_model=base_model,
            checkpoint_dir=train_checkpoint_dir,
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            gpu_count=gpu_count,
            cache_root=CACHE_MOUNT,
        ).set_display_name("train DPO")
    tuned_model = dsl.OneOf(on_trainjob.outputs["model"], trained.outputs["model"])
    evaluated = evaluate_models(
        dataset=prep.outputs["dataset"],
        tuned_model=tuned_model,
        base_model=base_model,
        judge=eval_judge,
        judge_model=eval_judge_model,
        eval_ideas_uri=eval_ideas_uri,
        samples_per_idea=eval_samples_per_idea,
        seed=eval_seed,
        reward_pairs=eval_reward_pairs,
        temperature=sample_temperature,
        top_p=sample_top_p,
        max_new_tokens=sample_max_new_tokens,
        response_cache=api_response_cache,
        max_in_flight=api_max_in_flight,
        requests_per_minute=api_requests_per_minute,
        cache_root=CACHE_MOUNT,
    ).set_display_name("evaluate")
    # Preflight checks every key the run will need, so it sees them all.
    _use_secret(checked, api_secret, (*API_KEYS, HUB_TOKEN))
    _use_secret(evaluated, api_secret, API_KEYS)
    for gpu_task in (trained, evaluated):
        gpu_task.set_accelerator_type(gpu_type).set_accelerator_limit(gpu_count)
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
    for cached in (gen, lab, agreed, trained, evaluated):
        _mount_cache(cached, cache_pvc)
    for cpu_task in (checked, prep):
        cpu_task.set_cpu_request("1").set_memory_request("2G")
    # The response cache makes a retried API task cheap, and training resumes from its checkpoint.
    for retried in (trained, evaluated):
        _retry(retried)
    exported = export_results(
        dataset=prep.outputs["dataset"],
        model=tuned_model,
        dataset_uri=export_dataset_uri,
        model_uri=export_model_uri,
        hub_dataset_repo=export_hub_dataset_repo,
        hub_model_repo=export_hub_model_repo,
        hub_private=export_hub_private,
    ).set_display_name("export")
    exported.set_cpu_request("1").set_memory_request("4G")
    _retry(exported)
    _use_secret(exported, api_secret, (HUB_TOKEN,))
    write_report(
        evaluation=evaluated.outputs["evaluation"],
        tuned_model=tuned_model,
        candidates=candidates.outputs["merged"],
        dataset=prep.outputs["dataset"],
        agreement=agreed.outputs["agreement"],
    ).set_display_name("report")
