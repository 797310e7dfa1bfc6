from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def train_trainjob(
    dataset: Input[Dataset],
    recipe_file: Input[Artifact],
    model: Output[Model],
    metrics: Output[Metrics],
    trainjob: Output[Artifact],
    base_model: str,
    checkpoint_dir: str,
    run_id: str,
    train_image: str,
    runtime: str,
    num_nodes: int,
    gpu_count: int,
    gpu_type: str,
    cpu_request: str,
    memory_request: str,
    node_selector: dict,
    tolerations: list,
    timeout_minutes: int,
    namespace: str,
    cache_pvc: str,
    cache_root: str,
):
    """Tune the base model on a Kubeflow Trainer v2 TrainJob: num_nodes x gpu_count GPUs.

    Args:
        dataset: Dataset folder from the prepare stage; copied onto the cache volume.
        recipe_file: The recipe with its overrides, checked and resolved by preflight (JSON).
        model: Tuned model folder, copied back from the cache volume once the TrainJob is done.
        metrics: Final training and validation figures.
        trainjob: The TrainJob this task created (or found), as YAML.
        base_model: Model to tune: a hub id or a folder the TrainJob's pods can read.
        checkpoint_dir: Folder on the cache volume for checkpoints; empty: `checkpoints/` there.
        run_id: Names the TrainJob and its checkpoint subfolder (the pipeline's job id), so a
            retried task finds the TrainJob it created.
        train_image: Image of the TrainJob's nodes (the train task's image).
        runtime: ClusterTrainingRuntime of the TrainJob (a torch runtime: it sets PET_*).
        num_nodes: Training nodes (TrainJob numNodes).
        gpu_count: GPUs per node; torchrun starts one process per GPU.
        gpu_type: Kubernetes resource name of the GPU.
        cpu_request: CPU request per node.
        memory_request: Memory request per node.
        node_selector: Node selector of the training pods.
        tolerations: Tolerations of the training pods.
        timeout_minutes: Longest the TrainJob may run (its activeDeadlineSeconds); then it fails.
        namespace: Namespace of the TrainJob; empty: this pod's own.
        cache_pvc: PersistentVolumeClaim mounted on this task and on every node (ReadWriteMany
            for more than one node).
        cache_root: Where the claim is mounted, on this task and on the nodes.
    """
    import json

    from dpo_titles.errors import exit_on_user_error
    from dpo_titles.metrics import log_metrics
    from dpo_titles.train import checkpoint_folder
    from dpo_titles.trainjob import train_on_trainjob, trainjob_name

    with exit_on_user_error("train"):
        stats = train_on_trainjob(
            dataset_dir=dataset.path,
            recipe_file=recipe_file.path,
            model_path=model.path,
            yaml_path=trainjob.path,
            run_id=run_id,
            image=train_image,
            base_model=base_model,
            checkpoint_dir=checkpoint_folder(checkpoint_dir, cache_root, run_id),
            cache_pvc=cache_pvc,
            cache_root=cache_root,
            runtime=runtime,
            num_nodes=num_nodes,
            gpu_count=gpu_count,
            gpu_type=gpu_type,
            cpu_request=cpu_request,
            memory_request=memory_request,
            node_selector=node_selector,
            tolerations=tolerations,
            timeout_minutes=timeout_minutes,
            namespace=namespace,
        )
        with open(recipe_file.path, encoding="utf-8") as fh:
            recipe_name = json.load(fh)["name"]
        model.metadata.update({"base_model": base_model, "recipe": recipe_name})
        trainjob.metadata.update({"name": trainjob_name(run_id)})
        log_metrics(metrics, stats)
