"""The train stage as a Kubeflow Trainer v2 `TrainJob`: numNodes nodes x GPUs per node.

The pipeline's `train_backend=trainjob` branch runs this from a small CPU task. It copies the
dataset and the resolved recipe onto the cache volume under a folder named after the TrainJob,
creates the TrainJob (the train image, `torchrun -m dpo_titles.cli train ...`, the
`torch-distributed` runtime's torch plugin setting the PET_* variables torchrun reads), streams
node 0's log, waits for the TrainJob to complete or fail, and copies the model back.

The TrainJob's name is a hash of the pipeline run's id, so a retried task finds the TrainJob its
earlier attempt created (409 AlreadyExists) and waits for that one instead of starting another.
Kubernetes is reached with the `kubernetes` client (a kfp dependency, in every image): the
calls are a handful, and the spec stays ours to write and to check against the Trainer's CRD.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError

log = logging.getLogger(__name__)

GROUP = "trainer.kubeflow.org"
VERSION = "v1alpha1"
KIND = "TrainJob"
PLURAL = "trainjobs"
DEFAULT_RUNTIME = "torch-distributed"
# Where the train stage runs: the pipeline task itself, or a TrainJob it creates.
BACKENDS = ("pod", "trainjob")
DEFAULT_BACKEND = "pod"
DEFAULT_TIMEOUT_MINUTES = 24 * 60
# The runtime's trainer ReplicatedJob and its container (kubeflow/trainer constants.Node).
NODE = "node"
# Labels JobSet puts on every pod of a TrainJob (the JobSet has the TrainJob's name).
JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"
REPLICATED_JOB_LABEL = "jobset.sigs.k8s.io/replicatedjob-name"
COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
# runtimePatches entries are keyed by a domain-prefixed manager name (the Trainer's webhook
# refuses one without a domain).
PATCH_MANAGER = "pipelines.kubeflow.org/dpo-titles"
NAME_PREFIX = "dpo-titles-"
NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
# What the cache volume holds for one TrainJob: <cache>/trainjobs/<name>/{dataset,recipe.json,
# model}.
WORK_FOLDER = "trainjobs"
# The in-memory /dev/shm of every GPU pod (the train and evaluate tasks, the TrainJob's nodes):
# PyTorch data loaders and NCCL need more than a container's 64 MB.
SHM_SIZE = "8Gi"
# The component's own deadline is the TrainJob's plus this, so the Trainer's DeadlineExceeded
# (which names the reason) normally comes first.
GRACE_S = 300


def trainjob_name(run_id: str) -> str:
    """The TrainJob of a pipeline run: `dpo-titles-` and 10 hex digits of its id (DNS-1035)."""
    if not run_id.strip():
        raise UserError("a TrainJob needs the pipeline run's id to be named after it")
    return NAME_PREFIX + hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:10]


def own_namespace(path: str = NAMESPACE_FILE) -> str:
    """The namespace this pod runs in, from its service-account mount."""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError:
        raise UserError(
            "no namespace given and not running in a pod (no service-account namespace file): "
            "set train_namespace"
        ) from None


@dataclass
class TrainJobRequest:
    """Everything the TrainJob is made of, as the pipeline's parameters give it."""

    name: str
    image: str
    base_model: str
    dataset_dir: str
    recipe_file: str
    out_dir: str
    checkpoint_dir: str | None
    cache_pvc: str
    cache_root: str
    runtime: str = DEFAULT_RUNTIME
    num_nodes: int = 1
    gpu_count: int = 1
    gpu_type: str = "nvidia.com/gpu"
    cpu_request: str = ""
    memory_request: str = ""
    node_selector: dict = field(default_factory=dict)
    tolerations: list = field(default_factory=list)
    timeout_s: int = 24 * 3600


def train_command(req: TrainJobRequest) -> list[str]:
    """The container's command: torchrun, which takes nodes, processes per node, rank and
    master from the PET_* variables the Trainer's torch plugin sets, then the train stage."""
    cmd = ["torchrun", "-m", "dpo_titles.cli", "train"]
    cmd += ["--model", req.base_model, "--dataset", req.dataset_dir, "--out", req.out_dir]
    cmd += ["--recipe", req.recipe_file]
    if req.checkpoint_dir:
        cmd += ["--checkpoint-dir", req.checkpoint_dir]
    return cmd


def trainjob_spec(req: TrainJobRequest) -> dict:
    """The TrainJob object to create (trainer.kubeflow.org/v1alpha1, Trainer v2.2 and later)."""
    resources: dict = {"limits": {req.gpu_type: str(req.gpu_count)}}
    requests = {k: v for k, v in (("cpu", req.cpu_request), ("memory", req.memory_request)) if v}
    if requests:
        resources["requests"] = requests
    pod: dict = {
        "volumes": [
            {"name": "cache", "persistentVolumeClaim": {"claimName": req.cache_pvc}},
            # As on the pod backend: data loaders and NCCL need more than 64 MB of /dev/shm.
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}},
        ],
        # Env of the node container may not be patched (the Trainer's webhook refuses it);
        # mounts may.
        "containers": [
            {
                "name": NODE,
                "volumeMounts": [
                    {"name": "cache", "mountPath": req.cache_root},
                    {"name": "dshm", "mountPath": "/dev/shm"},
                ],
            }
        ],
    }
    if req.node_selector:
        pod["nodeSelector"] = dict(req.node_selector)
    if req.tolerations:
        pod["tolerations"] = list(req.tolerations)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": req.name,
            "labels": {
                "app.kubernetes.io/name": "dpo-titles",
                "app.kubernetes.io/part-of": "dpo-titles",
            },
        },
        "spec": {
            "runtimeRef": {
                "apiGroup": GROUP,
                "kind": "ClusterTrainingRuntime",
                "name": req.runtime,
            },
            # The Trainer stops the pods and marks the TrainJob Failed (DeadlineExceeded) itself,
            # so GPUs are freed even if this task is gone.
            "activeDeadlineSeconds": int(req.timeout_s),
            "trainer": {
                "image": req.image,
                "command": train_command(req),
                "numNodes": int(req.num_nodes),
                "resourcesPerNode": resources,
                "env": [
                    # What use_cache_volume sets on the pod backend: models download once.
                    {"name": "HF_HOME", "value": f"{req.cache_root.rstrip('/')}/huggingface"},
                    {"name": "PYTHONUNBUFFERED", "value": "1"},
                ],
            },
            "runtimePatches": [
                {
                    "manager": PATCH_MANAGER,
                    "trainingRuntimeSpec": {
                        "template": {
                            "spec": {
                                "replicatedJobs": [
                                    {
                                        "name": NODE,
                                        "template": {"spec": {"template": {"spec": pod}}},
                                    }
                                ]
                            }
                        }
                    },
                }
            ],
        },
    }


def check_request(req: TrainJobRequest) -> None:
    """Refuse, in one line, what would make an invalid or unschedulable TrainJob."""
    if not req.cache_pvc or not req.cache_root:
        raise UserError(
            "train_backend=trainjob needs the cache volume (cache_pvc, and a pipeline compiled "
            "with CACHE_PVC set): it carries the dataset and the model between the pods"
        )
    for what, value in (("gpu_num_nodes", req.num_nodes), ("gpu_count", req.gpu_count)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{what} must be a whole number of at least 1, got {value!r}")
    if not req.runtime.strip():
        raise UserError("train_runtime must name a ClusterTrainingRuntime, e.g. torch-distributed")
    if req.timeout_s < 1:
        raise UserError("train_timeout_minutes must be above 0")


def stage_inputs(dataset_dir: str, recipe_file: str, work: Path) -> tuple[str, str]:
    """Copy the dataset and the recipe under `work` on the volume (once: a retry finds them)."""
    work.mkdir(parents=True, exist_ok=True)
    dataset = work / "dataset"
    if not dataset.is_dir():
        # Copied aside and renamed, so a copy cut short is never taken for the dataset.
        partial = work / "dataset.partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(dataset_dir, partial)
        partial.rename(dataset)
    recipe = work / "recipe.json"
    shutil.copyfile(recipe_file, recipe)
    return str(dataset), str(recipe)


def copy_model_back(out_dir: str, model_path: str) -> None:
    """Copy the TrainJob's model folder into the task's Output[Model]."""
    source = Path(out_dir)
    from .train import TRAIN_METRICS_FILE

    if not (source / TRAIN_METRICS_FILE).is_file():
        raise UserError(
            f"the TrainJob completed but {source} holds no {TRAIN_METRICS_FILE}: node 0 did not "
            "write the model (is the cache volume ReadWriteMany, the same claim on every node?)"
        )
    shutil.copytree(source, model_path, dirs_exist_ok=True)


class TrainJobs:
    """The Kubernetes calls a TrainJob needs, in one namespace."""

    def __init__(self, api_client, namespace: str):
        from kubernetes import client

        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)

    def create_or_find(self, body: dict) -> tuple[dict, bool]:
        """Create the TrainJob; if one of its name exists (an earlier attempt's), return that.
        The second value says whether this call created it."""
        from kubernetes.client.exceptions import ApiException

        try:
            made = self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, body
            )
            return made, True
        except ApiException as exc:
            if exc.status != 409:
                raise _api_error(exc, f"create TrainJob {body['metadata']['name']}") from None
        return self.get(body["metadata"]["name"]), False

    def get(self, name: str) -> dict:
        """The TrainJob as the API server has it now."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name
            )
        except ApiException as exc:
            raise _api_error(exc, f"read TrainJob {name}") from None

    def node0_pod(self, name: str):
        """Node 0's newest pod (the trainer job's completion index 0), or None before it exists."""
        selector = (
            f"{JOBSET_NAME_LABEL}={name},{REPLICATED_JOB_LABEL}={NODE},{COMPLETION_INDEX_LABEL}=0"
        )
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        if not pods:
            return None
        # A restarted JobSet replaces the pod: the newest is the one running now.
        return max(pods, key=lambda p: (str(p.metadata.creation_timestamp or ""), p.metadata.name))

    def follow_log(self, pod_name: str, out) -> None:
        """Copy a pod's node container log to `out` until the container ends."""
        stream = self.core.read_namespaced_pod_log(
            pod_name, self.namespace, container=NODE, follow=True, _preload_content=False
        )
        try:
            pending = b""
            for chunk in stream.stream(4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    out.write(line.decode("utf-8", "replace") + "\n")
                out.flush()
            if pending:
                out.write(pending.decode("utf-8", "replace") + "\n")
                out.flush()
        finally:
            stream.release_conn()


def _api_error(exc, doing: str) -> UserError:
    if exc.status == 403:
        return UserError(
            f"not allowed to {doing} in this namespace (403): apply manifests/rbac.yaml and run "
            "the pipeline under the dpo-titles ServiceAccount"
        )
    if exc.status == 404 and doing.startswith("create"):
        return UserError(
            f"cannot {doing} (404): is Kubeflow Trainer v2 installed (trainjobs.{GROUP})?"
        )
    reason = (exc.reason or "").strip() or "error"
    return UserError(f"cannot {doing}: Kubernetes API answered {exc.status} {reason}")


def condition(trainjob: dict, kind: str) -> dict | None:
    """The TrainJob's condition of type `kind` when its status is True, else None."""
    for cond in (trainjob.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return cond
    return None


class LogFollower(threading.Thread):
    """Streams node 0's log while the main thread waits; follows a replaced pod (a restarted
    JobSet makes new ones) and stops when told to."""

    def __init__(self, jobs: TrainJobs, name: str, out, poll_s: float):
        super().__init__(name=f"logs-{name}", daemon=True)
        self.jobs, self.trainjob, self.out, self.poll_s = jobs, name, out, poll_s
        self.stop = threading.Event()
        self.followed: list[str] = []

    def run(self) -> None:
        """Follow each new node 0 pod until stopped; at least once, even after the end."""
        while not self.stop.is_set():
            if self._follow_new_pod():
                continue
            self.stop.wait(self.poll_s)
        if not self.followed:
            # The TrainJob ended before its pod was seen running: print the log it left.
            self._follow_new_pod()

    def _follow_new_pod(self) -> bool:
        try:
            pod = self.jobs.node0_pod(self.trainjob)
            if pod is None or pod.metadata.name in self.followed:
                return False
            if (pod.status and pod.status.phase) in (None, "Pending"):
                return False
            self.followed.append(pod.metadata.name)
            log.info("log of %s (node 0):", pod.metadata.name)
            self.jobs.follow_log(pod.metadata.name, self.out)
            return True
        except Exception as exc:  # a lost log is no reason to fail the training
            log.warning("cannot read node 0's log: %s", exc)
            return False


def wait_for(jobs: TrainJobs, name: str, timeout_s: float, grace_s: float, poll_s: float) -> dict:
    """Poll the TrainJob until it is Complete (returned) or Failed, or `timeout_s` and
    `grace_s` have passed (a UserError of one line either way)."""
    end = time.monotonic() + timeout_s + grace_s
    seen = None
    while True:
        current = jobs.get(name)
        if condition(current, "Complete"):
            return current
        failed = condition(current, "Failed")
        if failed:
            reason = failed.get("reason") or "Failed"
            message = " ".join(str(failed.get("message") or "").split())
            raise UserError(
                f"TrainJob {name} failed ({reason}){': ' + message if message else ''}; "
                f"see `kubectl describe trainjob {name}` and its pods' logs"
            )
        conditions = [
            (c.get("type"), c.get("status"), c.get("reason"))
            for c in (current.get("status") or {}).get("conditions") or []
        ]
        if conditions != seen:
            log.info("TrainJob %s: %s", name, conditions or "no conditions yet")
            seen = conditions
        if time.monotonic() >= end:
            raise UserError(
                f"TrainJob {name} did not finish within {timeout_s / 60:g} minutes "
                f"(train_timeout_minutes); it is left as it is: `kubectl delete trainjob {name}` "
                "to stop it"
            )
        time.sleep(max(0.01, min(poll_s, end - time.monotonic())))


def run_trainjob(
    req: TrainJobRequest,
    model_path: str,
    yaml_path: str,
    *,
    api_client,
    namespace: str,
    poll_s: float = 15.0,
    grace_s: float = GRACE_S,
    out=None,
) -> dict:
    """Train on a TrainJob: stage the inputs on the volume, create (or find) the TrainJob,
    stream node 0's log, wait, and copy the model to `model_path`; returns the final figures."""
    import yaml

    from .files import read_json
    from .train import TRAIN_METRICS_FILE

    check_request(req)
    body = trainjob_spec(req)
    Path(yaml_path).parent.mkdir(parents=True, exist_ok=True)
    Path(yaml_path).write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    jobs = TrainJobs(api_client, namespace)
    _, created = jobs.create_or_find(body)
    if created:
        log.info("created TrainJob %s in %s (%d node(s))", req.name, namespace, req.num_nodes)
    else:
        log.info("found TrainJob %s from an earlier attempt of this run: waiting for it", req.name)
    follower = LogFollower(jobs, req.name, out or sys.stdout, poll_s)
    follower.start()
    try:
        wait_for(jobs, req.name, req.timeout_s, grace_s, poll_s)
    finally:
        follower.stop.set()
        # The log stream ends with node 0's container; give it time to print its last lines.
        follower.join(timeout=30.0)
    copy_model_back(req.out_dir, model_path)
    return read_json(Path(model_path) / TRAIN_METRICS_FILE, "training figures", dict)


def kubernetes_client():
    """An API client from the pod's service account, else from ~/.kube/config."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def train_on_trainjob(
    *,
    dataset_dir: str,
    recipe_file: str,
    model_path: str,
    yaml_path: str,
    run_id: str,
    image: str,
    base_model: str,
    checkpoint_dir: str | None,
    cache_pvc: str,
    cache_root: str,
    runtime: str,
    num_nodes: int,
    gpu_count: int,
    gpu_type: str,
    cpu_request: str,
    memory_request: str,
    node_selector: dict,
    tolerations: list,
    timeout_minutes: float,
    namespace: str = "",
    api_client=None,
    poll_s: float = 15.0,
    grace_s: float = GRACE_S,
) -> dict:
    """The trainjob component's work: the inputs copied under the TrainJob's folder on the cache
    volume, then run_trainjob; returns the training figures."""
    name = trainjob_name(run_id)
    work = Path(cache_root or ".") / WORK_FOLDER / name
    req = TrainJobRequest(
        name=name,
        image=image,
        base_model=base_model,
        dataset_dir=str(work / "dataset"),
        recipe_file=str(work / "recipe.json"),
        out_dir=str(work / "model"),
        checkpoint_dir=checkpoint_dir,
        cache_pvc=cache_pvc,
        cache_root=cache_root,
        runtime=runtime,
        num_nodes=num_nodes,
        gpu_count=gpu_count,
        gpu_type=gpu_type,
        cpu_request=cpu_request,
        memory_request=memory_request,
        node_selector=node_selector or {},
        tolerations=tolerations or [],
        timeout_s=int(round(float(timeout_minutes) * 60)),
    )
    check_request(req)
    if not Path(cache_root).is_dir():
        raise UserError(f"the cache volume is not mounted at {cache_root}: check cache_pvc")
    stage_inputs(dataset_dir, recipe_file, work)
    return run_trainjob(
        req,
        model_path,
        yaml_path,
        api_client=api_client or kubernetes_client(),
        namespace=namespace or own_namespace(),
        poll_s=poll_s,
        grace_s=grace_s,
    )
