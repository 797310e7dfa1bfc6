"""train_backend=trainjob: the train stage as a Kubeflow Trainer v2 TrainJob, driven against a
loopback fake of the Kubernetes API (tests/fakes/k8s_server.py) and checked against the
Trainer's published TrainJob CRD (tests/fixtures/)."""

import json
import re
from pathlib import Path

import pytest
import yaml

from dpo_titles.errors import UserError
from dpo_titles.trainjob import (
    COMPLETION_INDEX_LABEL,
    JOBSET_NAME_LABEL,
    REPLICATED_JOB_LABEL,
    TrainJobRequest,
    train_command,
    train_on_trainjob,
    trainjob_name,
    trainjob_spec,
)
from tests.conftest import REPO
from tests.fakes.k8s_server import FakeKubernetes, JobScript

CRD = REPO / "tests" / "fixtures" / "trainer.kubeflow.org_trainjobs.yaml"
RUN_ID = "8d1e2f40-5b6c-4d7e-9f80-123456789abc"
NS = "team-a"
JOBS = f"/apis/trainer.kubeflow.org/v1alpha1/namespaces/{NS}/trainjobs"
IMAGE = "ghcr.io/dpo-titles/dpo-titles-python-cuda:0.1.0"


def _request(**given) -> TrainJobRequest:
    fields = dict(
        name=trainjob_name(RUN_ID),
        image=IMAGE,
        base_model="Qwen/Qwen2.5-0.5B-Instruct",
        dataset_dir="/cache/trainjobs/x/dataset",
        recipe_file="/cache/trainjobs/x/recipe.json",
        out_dir="/cache/trainjobs/x/model",
        checkpoint_dir=f"/cache/checkpoints/{RUN_ID}",
        cache_pvc="dpo-titles-cache",
        cache_root="/cache",
        num_nodes=2,
        gpu_count=4,
        cpu_request="8",
        memory_request="64G",
        node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"},
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        timeout_s=3600,
    )
    return TrainJobRequest(**{**fields, **given})


# -- the TrainJob object ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def trainjob_schema() -> dict:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd = yaml.load(CRD.read_text(encoding="utf-8"), Loader=loader)
    assert crd["spec"]["names"]["kind"] == "TrainJob"
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return version["schema"]["openAPIV3Schema"]


def _unknown_fields(value, schema, path="") -> list[str]:
    """Fields the schema does not name: the API server drops or refuses them, and jsonschema
    alone lets them through (a CRD schema closes objects by listing properties)."""
    found = []
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key in schema["properties"]:
                found += _unknown_fields(item, schema["properties"][key], f"{path}.{key}")
            elif "additionalProperties" not in schema:
                found.append(f"{path}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found += _unknown_fields(item, schema["items"], f"{path}[{i}]")
    return found


def test_the_trainjob_is_valid_against_the_trainers_crd(trainjob_schema):
    import jsonschema

    body = trainjob_spec(_request())
    jsonschema.validate(body, trainjob_schema)
    assert _unknown_fields(body, trainjob_schema) == []
    # The validator bites: a misspelt field and a wrong type are both caught.
    typo = json.loads(json.dumps(body))
    typo["spec"]["trainer"]["numnodes"] = 2
    assert _unknown_fields(typo, trainjob_schema) == [".spec.trainer.numnodes"]
    wrong = json.loads(json.dumps(body))
    wrong["spec"]["trainer"]["numNodes"] = "two"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong, trainjob_schema)


def test_the_trainjob_asks_for_nodes_gpus_scheduling_and_the_volume():
    req = _request()
    spec = trainjob_spec(req)["spec"]
    assert trainjob_spec(req)["metadata"]["name"] == req.name
    assert spec["runtimeRef"] == {
        "apiGroup": "trainer.kubeflow.org",
        "kind": "ClusterTrainingRuntime",
        "name": "torch-distributed",
    }
    trainer = spec["trainer"]
    assert trainer["image"] == IMAGE and trainer["numNodes"] == 2
    assert trainer["resourcesPerNode"] == {
        "limits": {"nvidia.com/gpu": "4"},
        "requests": {"cpu": "8", "memory": "64G"},
    }
    assert spec["activeDeadlineSeconds"] == 3600
    # The torch plugin refuses a TrainJob that sets its PET_* variables itself.
    assert not [e for e in trainer["env"] if e["name"].startswith("PET_")]
    assert {"name": "HF_HOME", "value": "/cache/huggingface"} in trainer["env"]
    (patch,) = spec["runtimePatches"]
    (job,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    assert job["name"] == "node"
    pod = job["template"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == req.node_selector and pod["tolerations"] == req.tolerations
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["cache"]["persistentVolumeClaim"] == {"claimName": "dpo-titles-cache"}
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
    (container,) = pod["containers"]
    # The Trainer's webhook refuses env on the node container's patch: env goes in trainer.env.
    assert container["name"] == "node" and "env" not in container
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/cache", "/dev/shm"}
    # A manager without a domain prefix is refused by the webhook too.
    assert re.fullmatch(r"[a-z0-9.-]+\.[a-z]+/[a-z0-9-]+", patch["manager"])


def test_the_name_is_dns_1035_short_and_the_runs_own():
    name = trainjob_name(RUN_ID)
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 30
    assert name == trainjob_name(RUN_ID) != trainjob_name(RUN_ID + "x")
    with pytest.raises(UserError):
        trainjob_name(" ")


def test_the_command_is_torchrun_reading_the_trainers_pet_variables(monkeypatch):
    """torchrun takes nodes, processes per node, rank and master from PET_* (what the
    Trainer's torch plugin sets), then runs the train stage as a module with its own flags."""
    from torch.distributed.run import get_args_parser

    from dpo_titles.cli import build_parser

    cmd = train_command(_request())
    assert cmd[:4] == ["torchrun", "-m", "dpo_titles.cli", "train"]
    pet = {
        "PET_NNODES": "2",
        "PET_NPROC_PER_NODE": "auto",
        "PET_NODE_RANK": "1",
        "PET_MASTER_ADDR": "dpo-titles-x-node-0-0.dpo-titles-x",
        "PET_MASTER_PORT": "29500",
    }
    for key, value in pet.items():
        monkeypatch.setenv(key, value)
    args = get_args_parser().parse_args(cmd[1:])
    assert (args.nnodes, args.nproc_per_node, args.node_rank) == ("2", "auto", 1)
    assert (args.master_addr, args.master_port) == (pet["PET_MASTER_ADDR"], 29500)
    assert args.module and args.training_script == "dpo_titles.cli"
    parsed = build_parser().parse_args(args.training_script_args)
    assert parsed.command == "train" and parsed.model == "Qwen/Qwen2.5-0.5B-Instruct"
    assert parsed.recipe == "/cache/trainjobs/x/recipe.json"
    assert parsed.checkpoint_dir == f"/cache/checkpoints/{RUN_ID}"


# -- the task against the fake API ----------------------------------------------------------


@pytest.fixture()
def inputs(tmp_path):
    dataset = tmp_path / "in" / "dataset"
    (dataset / "hf").mkdir(parents=True)
    (dataset / "split.json").write_text('{"train": 8}')
    recipe = tmp_path / "in" / "recipe.json"
    recipe.write_text(json.dumps({"name": "lora", "fields": {}}))
    cache = tmp_path / "cache"
    cache.mkdir()
    return {"dataset": dataset, "recipe": recipe, "cache": cache, "out": tmp_path / "out"}


def _node_writes_the_model(trainjob: dict) -> None:
    """What node 0 does by the time the TrainJob is Complete: the model in --out."""
    cmd = trainjob["spec"]["trainer"]["command"]
    out = Path(cmd[cmd.index("--out") + 1])
    assert Path(cmd[cmd.index("--dataset") + 1], "split.json").is_file()
    out.mkdir(parents=True)
    (out / "config.json").write_text("{}")
    (out / "train_metrics.json").write_text(json.dumps({"train_loss": 0.41, "train_steps": 2}))


def _run(inputs, k8s, **given):
    args = dict(
        dataset_dir=str(inputs["dataset"]),
        recipe_file=str(inputs["recipe"]),
        model_path=str(inputs["out"] / "model"),
        yaml_path=str(inputs["out"] / "trainjob.yaml"),
        run_id=RUN_ID,
        image=IMAGE,
        base_model="Qwen/Qwen2.5-0.5B-Instruct",
        checkpoint_dir=str(inputs["cache"] / "checkpoints" / RUN_ID),
        cache_pvc="dpo-titles-cache",
        cache_root=str(inputs["cache"]),
        runtime="torch-distributed",
        num_nodes=2,
        gpu_count=4,
        gpu_type="nvidia.com/gpu",
        cpu_request="8",
        memory_request="64G",
        node_selector={},
        tolerations=[],
        timeout_minutes=60,
        namespace=NS,
        api_client=k8s.api_client(),
        poll_s=0.02,
    )
    return train_on_trainjob(**{**args, **given})


def _calls(k8s) -> list[tuple[str, str]]:
    """Each request as (verb, resource), as RBAC names them."""
    out = []
    for r in k8s.requests:
        if r["path"].startswith(JOBS):
            out.append(("create" if r["method"] == "POST" else "get", "trainjobs"))
        elif r["path"].endswith("/log"):
            out.append(("get", "pods/log"))
        else:
            out.append(("list", "pods"))
    return out


def test_a_trainjob_is_created_followed_and_its_model_copied_back(inputs, capsys):
    script = JobScript(on_done=_node_writes_the_model, log="step 1 loss 0.69\nstep 2 loss 0.41")
    with FakeKubernetes(script, namespace=NS) as k8s:
        stats = _run(inputs, k8s)
        requests = k8s.requests
    name = trainjob_name(RUN_ID)
    assert stats == {"train_loss": 0.41, "train_steps": 2}
    assert (inputs["out"] / "model" / "config.json").is_file()
    # The body that arrived is the TrainJob written as the task's artifact.
    (created,) = [r for r in requests if r["method"] == "POST"]
    assert created["path"] == JOBS
    written = yaml.safe_load((inputs["out"] / "trainjob.yaml").read_text())
    assert created["json"] == written and written["metadata"]["name"] == name
    work = inputs["cache"] / "trainjobs" / name
    cmd = written["spec"]["trainer"]["command"]
    assert cmd[cmd.index("--dataset") + 1] == str(work / "dataset")
    assert cmd[cmd.index("--out") + 1] == str(work / "model")
    assert (work / "recipe.json").read_text() == inputs["recipe"].read_text()
    # Node 0's pod, found by the labels JobSet gives it, and its log, followed.
    lists = [r for r in requests if r["path"].endswith("/pods")]
    assert lists and lists[0]["query"]["labelSelector"] == [
        f"{JOBSET_NAME_LABEL}={name},{REPLICATED_JOB_LABEL}=node,{COMPLETION_INDEX_LABEL}=0"
    ]
    (logs,) = [r for r in requests if r["path"].endswith("/log")]
    assert logs["path"].endswith(f"/pods/{name}-node-0-0-abcde/log")
    # The client sends Python's `True`; the API server parses it as Go's ParseBool does.
    assert logs["query"]["follow"] == ["True"] and logs["query"]["container"] == ["node"]
    assert "step 2 loss 0.41" in capsys.readouterr().out
    assert set(_calls(k8s)) <= _granted() and not k8s.unhandled


def test_a_retried_task_waits_for_the_trainjob_it_created(inputs, caplog):
    caplog.set_level("INFO", logger="dpo_titles.trainjob")
    name = trainjob_name(RUN_ID)
    with FakeKubernetes(JobScript(outcome=None), namespace=NS) as k8s:
        # The first attempt's pod is lost while its TrainJob trains on (here: it gives up).
        with pytest.raises(UserError, match="did not finish"):
            _run(inputs, k8s, timeout_minutes=1, grace_s=-59.9)
        k8s.jobs[name].script = JobScript(on_done=_node_writes_the_model)
        stats = _run(inputs, k8s, timeout_minutes=1)  # the same parameters: the same TrainJob
        assert list(k8s.jobs) == [name]
        posts = [r for r in k8s.requests if r["method"] == "POST"]
    # The retry's create is answered 409 AlreadyExists; it reads and follows the first one.
    assert len(posts) == 2 and posts[0]["json"] == posts[1]["json"]
    assert stats["train_steps"] == 2 and (inputs["out"] / "model" / "config.json").is_file()
    assert "from an earlier attempt" in caplog.text


def test_a_failed_trainjob_fails_the_task_in_one_line(inputs):
    script = JobScript(
        outcome="Failed",
        reads_until_done=1,
        reason="DeadlineExceeded",
        message="TrainJob exceeded its\nactiveDeadlineSeconds",
    )
    with FakeKubernetes(script, namespace=NS) as k8s, pytest.raises(UserError) as failed:
        _run(inputs, k8s)
    text = str(failed.value)
    assert "\n" not in text and trainjob_name(RUN_ID) in text
    assert "DeadlineExceeded" in text and "exceeded its activeDeadlineSeconds" in text
    assert not (inputs["out"] / "model").exists()


def test_a_trainjob_that_never_ends_times_out_in_one_line(inputs):
    with (
        FakeKubernetes(JobScript(outcome=None), namespace=NS) as k8s,
        pytest.raises(UserError, match=r"did not finish within 1 minutes"),
    ):
        _run(inputs, k8s, timeout_minutes=1, grace_s=-59)


def test_without_the_cache_volume_nothing_is_created(inputs):
    with FakeKubernetes(namespace=NS) as k8s:
        with pytest.raises(UserError, match="needs the cache volume"):
            _run(inputs, k8s, cache_root="")
        with pytest.raises(UserError, match="gpu_num_nodes"):
            _run(inputs, k8s, num_nodes=0)
        assert k8s.requests == []


# -- RBAC ------------------------------------------------------------------------------------


def _granted() -> set[tuple[str, str]]:
    docs = list(yaml.safe_load_all((REPO / "manifests" / "rbac.yaml").read_text()))
    (role,) = [d for d in docs if d["kind"] == "Role"]
    return {(v, r) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}


def test_the_role_grants_exactly_what_the_task_calls():
    docs = list(yaml.safe_load_all((REPO / "manifests" / "rbac.yaml").read_text()))
    binding = next(d for d in docs if d["kind"] == "RoleBinding")
    account = yaml.safe_load((REPO / "manifests" / "serviceaccount.yaml").read_text())
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"]}]
    assert _granted() == {
        ("create", "trainjobs"),
        ("get", "trainjobs"),
        ("list", "pods"),
        ("get", "pods/log"),
    }
    kustomization = yaml.safe_load((REPO / "manifests" / "kustomization.yaml").read_text())
    assert "rbac.yaml" in kustomization["resources"]


# -- the pipeline ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    from tests.test_compile import compile_with

    with pytest.MonkeyPatch.context() as monkeypatch:
        return compile_with(tmp_path_factory.mktemp("compiled"), monkeypatch)


def test_the_pipeline_branches_on_train_backend(compiled):
    from tests.test_compile import locate

    spec = compiled
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["train_backend"]["defaultValue"] == "pod"
    assert params["train_runtime"]["defaultValue"] == "torch-distributed"
    assert params["gpu_num_nodes"]["defaultValue"] == 1
    trainjob, branches = locate(spec, "train-trainjob")
    pod, same = locate(spec, "train-dpo")
    assert same == branches
    inner = spec["components"][spec["root"]["dag"]["tasks"][branches]["componentRef"]["name"]]
    conditions = {
        name: task["triggerPolicy"]["condition"] for name, task in inner["dag"]["tasks"].items()
    }
    on_trainjob = "inputs.parameter_values['pipelinechannel--train_backend'] == 'trainjob'"
    # Only trainjob takes the TrainJob; pod (the default) and anything else train as today.
    assert sorted(conditions.values()) == sorted([on_trainjob, f"!({on_trainjob})"])
    # evaluate, export and report take the model of whichever branch ran.
    (oneof,) = inner["dag"]["outputs"]["artifacts"].values()
    assert len(oneof["artifactSelectors"]) == 2
    for task in ("evaluate-models", "export-results", "write-report"):
        consumed = spec["root"]["dag"]["tasks"][task]["inputs"]["artifacts"]
        model = consumed.get("tuned_model") or consumed.get("model")
        assert model["taskOutputArtifact"]["producerTask"] == branches
    # The TrainJob task is a CPU task with the volume; its TrainJob runs the train image.
    executors = spec["deploymentSpec"]["executors"]
    task_exec = executors[trainjob["componentRef"]["name"].replace("comp-", "exec-")]
    assert "accelerator" not in task_exec["container"].get("resources", {})
    assert task_exec["container"]["image"].endswith("/dpo-titles-python:0.1.0")
    wired = trainjob["inputs"]["parameters"]
    assert (
        wired["train_image"]["runtimeValue"]["constant"]
        == (executors["exec-train-dpo"]["container"]["image"])
    )
    for param, source in {
        "runtime": "train_runtime",
        "num_nodes": "gpu_num_nodes",
        "gpu_count": "gpu_count",
        "node_selector": "gpu_node_selector",
        "tolerations": "gpu_tolerations",
        "timeout_minutes": "train_timeout_minutes",
        "cache_pvc": "cache_pvc",
    }.items():
        assert wired[param]["componentInputParameter"] == f"pipelinechannel--{source}"
    assert pod["retryPolicy"] == trainjob["retryPolicy"]


def test_train_backend_pod_keeps_todays_train_task(compiled):
    """The pod branch's train task is today's: same component, inputs, GPU request, volume,
    shared memory, scheduling and retries."""
    from tests.test_compile import locate

    spec = compiled
    pod, _ = locate(spec, "train-dpo")
    declared = spec["components"][pod["componentRef"]["name"]]["inputDefinitions"]
    assert set(declared["parameters"]) == {
        "base_model",
        "checkpoint_dir",
        "run_id",
        "gpu_count",
        "cache_root",
    }
    assert set(declared["parameters"]) <= set(pod["inputs"]["parameters"])
    assert set(pod["inputs"]["artifacts"]) == {"dataset", "recipe_file"}
    assert pod["retryPolicy"]["maxRetryCount"] == 2
    container = spec["deploymentSpec"]["executors"]["exec-train-dpo"]["container"]
    assert container["image"].endswith("/dpo-titles-python-cuda:0.1.0")
    assert "gpu_count" in container["resources"]["accelerator"]["resourceCount"]
    k8s = spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train-dpo"]
    assert {"pvcMount", "emptyDirMounts", "nodeSelector", "tolerations"} <= set(k8s)


def test_kfp_local_takes_the_model_of_the_branch_that_ran(tmp_path):
    """kfp.local (which `make run-local` uses) refuses a dsl.OneOf of artifacts unless
    run_local's fix is in; with it, the model of the branch that ran goes on."""
    from kfp import dsl, local
    from kfp.dsl import Input, Model, Output

    from pipelines.run_local import take_one_of_artifacts

    take_one_of_artifacts()

    @dsl.component(base_image="python:3.11")
    def make(tag: str, model: Output[Model]):
        import os

        os.makedirs(model.path)
        with open(os.path.join(model.path, "tag"), "w") as fh:
            fh.write(tag)

    @dsl.component(base_image="python:3.11")
    def read(model: Input[Model]) -> str:
        import os

        with open(os.path.join(model.path, "tag")) as fh:
            return fh.read()

    @dsl.pipeline
    def branches(backend: str = "pod") -> str:
        with dsl.If(backend == "trainjob"):
            a = make(tag="trainjob")
        with dsl.Else():
            b = make(tag="pod")
        return read(model=dsl.OneOf(a.outputs["model"], b.outputs["model"])).output

    local.init(local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path))
    assert branches(backend="pod").output == "pod"
    assert branches(backend="trainjob").output == "trainjob"


def test_preflight_refuses_an_unknown_train_backend_before_anything_runs():
    from dpo_titles.preflight import check_settings
    from dpo_titles.settings import SettingError
    from pipelines.pipeline import dpo_titles_pipeline

    values = {n: s.default for n, s in dpo_titles_pipeline.component_spec.inputs.items()}
    check_settings(values)
    with pytest.raises(SettingError, match="train_backend must be one of pod, trainjob"):
        check_settings({**values, "train_backend": "trainjobs"})
    with pytest.raises(SettingError, match="gpu_num_nodes"):
        check_settings({**values, "train_backend": "trainjob", "gpu_num_nodes": 0})
