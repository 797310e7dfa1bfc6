"""The compiled pipeline, as a cluster would receive it."""

import importlib
import json
import sys

import yaml


def compile_with(tmp_path, monkeypatch, registry=None, tag=None, cache_pvc=None):
    for key, value in (("IMAGE_REGISTRY", registry), ("IMAGE_TAG", tag), ("CACHE_PVC", cache_pvc)):
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    # Images are fixed at import time, so re-import the components and the pipeline.
    for name in [n for n in sys.modules if n.startswith(("components", "pipelines"))]:
        del sys.modules[name]
    compile_mod = importlib.import_module("pipelines.compile")
    out = tmp_path / "pipeline.yaml"
    assert compile_mod.main(["--out", str(out)]) == 0
    # With Kubernetes settings the file holds two documents: the pipeline, then its platform spec.
    docs = list(yaml.safe_load_all(out.read_text()))
    spec = docs[0]
    for extra in docs[1:]:
        spec.update(extra)
    return spec


def _nested(spec, component):
    """Every task under a component's DAG, however deep, by name."""
    for name, task in spec["components"][component].get("dag", {}).get("tasks", {}).items():
        yield name, task
        yield from _nested(spec, task["componentRef"]["name"])


def locate(spec, name):
    """The task `name` wherever it is nested (a branch of dsl.If), and the root task it runs
    under (itself when it is at the root)."""
    for top, task in spec["root"]["dag"]["tasks"].items():
        if top == name:
            return task, top
        for inner, found in _nested(spec, task["componentRef"]["name"]):
            if inner == name:
                return found, top
    raise KeyError(name)


def test_training_requests_a_gpu_from_parameters(tmp_path, monkeypatch):
    spec = compile_with(tmp_path, monkeypatch)
    executors = spec["deploymentSpec"]["executors"]
    train = executors["exec-train-dpo"]["container"]
    acc = train["resources"]["accelerator"]
    assert "gpu_type" in acc["resourceType"]
    assert "gpu_count" in acc["resourceCount"]
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["gpu_type"]["defaultValue"] == "nvidia.com/gpu"
    assert params["gpu_count"]["defaultValue"] == 1
    assert params["base_model"]["defaultValue"] == "Qwen/Qwen2.5-0.5B-Instruct"
    assert "accelerator" not in executors["exec-label-preferences"]["container"].get(
        "resources", {}
    )


def test_images_come_from_compile_time_settings(tmp_path, monkeypatch):
    spec = compile_with(tmp_path, monkeypatch, registry="registry.example/team", tag="v9")
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images == {
        "registry.example/team/dpo-titles-python:v9",
        "registry.example/team/dpo-titles-python-cuda:v9",
    }
    for executor in spec["deploymentSpec"]["executors"].values():
        # The images carry kfp; a cluster without internet must not pip install at start.
        assert "pip install" not in " ".join(executor["container"]["command"])


def test_stages_run_in_order(tmp_path, monkeypatch):
    spec = compile_with(tmp_path, monkeypatch)
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks["plan-shards"]["dependentTasks"]) == {"preflight"}
    loop = tasks["for-loop-1"]
    assert loop["parameterIterator"]["items"]["inputParameter"].endswith("plan-shards-Output")
    inner = spec["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    assert set(inner) == {"generate-titles", "label-preferences"}
    assert inner["label-preferences"]["dependentTasks"] == ["generate-titles"]
    assert set(tasks["prepare-dataset"]["dependentTasks"]) == {"merge-preferences"}
    # The train task (in its branch of train_backend) reads the recipe preflight resolved, and
    # the dataset.
    _, branches = locate(spec, "train-dpo")
    assert locate(spec, "train-trainjob")[1] == branches
    assert set(tasks[branches]["dependentTasks"]) == {"preflight", "prepare-dataset"}
    # The judge's agreement with people runs once, after preflight, beside the shards.
    assert set(tasks["measure-agreement"]["dependentTasks"]) == {"preflight"}
    assert set(tasks["write-report"]["dependentTasks"]) == {
        "evaluate-models",
        branches,
        "merge-candidates",
        "prepare-dataset",
        "measure-agreement",
    }


def test_api_keys_reach_only_api_tasks_by_secret_name(tmp_path, monkeypatch):
    monkeypatch.setenv("TOGETHER_API_KEY", "sk-compile-time-secret-123")
    monkeypatch.setenv("GEMINI_API_KEY", "gm-compile-time-secret-456")
    spec = compile_with(tmp_path, monkeypatch)
    text = (tmp_path / "pipeline.yaml").read_text()
    assert "compile-time-secret" not in text
    k8s = spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    with_secret = {name for name, cfg in k8s.items() if "secretAsEnv" in cfg}
    api_keys = {"TOGETHER_API_KEY", "GEMINI_API_KEY"}
    expected = {
        "exec-preflight": api_keys | {"HF_TOKEN"},
        "exec-generate-titles": api_keys,
        "exec-label-preferences": api_keys,
        "exec-measure-agreement": api_keys,
        "exec-evaluate-models": api_keys,
        "exec-export-results": {"HF_TOKEN"},
    }
    assert with_secret == set(expected)
    for name in with_secret:
        (entry,) = k8s[name]["secretAsEnv"]
        assert {m["envVar"] for m in entry["keyToEnv"]} == expected[name]
        assert entry["secretNameParameter"]["componentInputParameter"].endswith("api_secret")
        assert entry["optional"] is True


def test_committed_yaml_matches_a_fresh_compile(tmp_path, monkeypatch):
    from tests.conftest import REPO

    compile_with(tmp_path, monkeypatch)
    fresh = (tmp_path / "pipeline.yaml").read_text()
    committed = (REPO / "pipelines" / "dpo_titles_pipeline.yaml").read_text()
    assert fresh == committed, "pipelines/dpo_titles_pipeline.yaml is stale: run `make compile`"


def test_gpu_tasks_get_scheduling_shared_memory_and_retries(tmp_path, monkeypatch):
    spec = compile_with(tmp_path, monkeypatch)
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["gpu_tolerations"]["defaultValue"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    k8s = spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    executors = spec["deploymentSpec"]["executors"]
    for name in ("exec-train-dpo", "exec-evaluate-models"):
        cfg = k8s[name]
        # The train task sits in a branch, which hands it the parameters as pipeline channels.
        selector = cfg["nodeSelector"]["nodeSelectorJson"]["componentInputParameter"]
        assert selector.removeprefix("pipelinechannel--") == "gpu_node_selector"
        tolerations = cfg["tolerations"][0]["tolerationJson"]["componentInputParameter"]
        assert tolerations.removeprefix("pipelinechannel--") == "gpu_tolerations"
        (shm,) = cfg["emptyDirMounts"]
        assert shm["mountPath"] == "/dev/shm" and shm["medium"] == "Memory"
        res = executors[name]["container"]["resources"]
        assert "gpu_cpu_request" in res["resourceCpuRequest"]
        assert "gpu_memory_request" in res["resourceMemoryRequest"]
    tasks = spec["root"]["dag"]["tasks"]
    loop = spec["components"][tasks["for-loop-1"]["componentRef"]["name"]]["dag"]["tasks"]
    for task in (
        loop["generate-titles"],
        loop["label-preferences"],
        locate(spec, "train-dpo")[0],
        locate(spec, "train-trainjob")[0],
        tasks["evaluate-models"],
    ):
        assert task["retryPolicy"]["maxRetryCount"] == 2
    assert "retryPolicy" not in tasks["preflight"]


def test_preflight_precedes_every_gpu_task(tmp_path, monkeypatch):
    spec = compile_with(tmp_path, monkeypatch)
    tasks = spec["root"]["dag"]["tasks"]

    def upstream(name, seen=None):
        seen = set() if seen is None else seen
        for dep in tasks[name].get("dependentTasks", []):
            if dep not in seen:
                seen.add(dep)
                upstream(dep, seen)
        return seen

    for gpu in ("train-dpo", "train-trainjob", "evaluate-models"):
        assert "preflight" in upstream(locate(spec, gpu)[1])


CACHED_TASKS = (
    "exec-generate-titles",
    "exec-label-preferences",
    "exec-train-dpo",
    "exec-train-trainjob",
)


def test_cache_volume_is_mounted_by_name_parameter_on_caching_tasks(tmp_path, monkeypatch):
    spec = compile_with(tmp_path, monkeypatch)
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["cache_pvc"]["defaultValue"] == "dpo-titles-cache"
    k8s = spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for name in (*CACHED_TASKS, "exec-evaluate-models"):
        (mount,) = k8s[name]["pvcMount"]
        assert mount["mountPath"] == "/cache"
        assert "cache_pvc" in json.dumps(mount["pvcNameParameter"])
    for name in ("exec-preflight", "exec-prepare-dataset", "exec-write-report"):
        assert "pvcMount" not in k8s.get(name, {})
    # The tasks are told where the volume is, so they point HF_HOME and the response cache at it.
    text = (tmp_path / "pipeline.yaml").read_text()
    assert text.count("constant: /cache") >= 4


def test_cache_volume_can_be_compiled_out(tmp_path, monkeypatch):
    spec = compile_with(tmp_path, monkeypatch, cache_pvc="")
    k8s = spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert not any("pvcMount" in cfg for cfg in k8s.values())
    assert "constant: /cache" not in (tmp_path / "pipeline.yaml").read_text()


def test_every_pipeline_parameter_carries_its_docstring_line(tmp_path, monkeypatch):
    spec = compile_with(tmp_path, monkeypatch)
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    undocumented = [name for name, p in parameters.items() if not p.get("description", "").strip()]
    assert parameters and undocumented == []
