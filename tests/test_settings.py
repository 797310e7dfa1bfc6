"""Each setting is defined once: the settings dataclasses and the back-end registry. Every layer
that repeats a name or a default (the command line, the components, the pipeline, the compiled
YAML) is made from them or checked against them here, so drift fails CI."""

from __future__ import annotations

import csv
import json
from dataclasses import fields

import pytest

from dpo_titles.api_calls import CallPolicy
from dpo_titles.cli import build_parser, settings_from
from dpo_titles.preflight import PIPELINE_GROUPS, TrainSettings, parameter_name
from dpo_titles.settings import Evaluation, Generation, Labelling, Sampling, Split
from tests.conftest import pipeline_wiring

# Which settings each command takes (the command line is made from these dataclasses).
COMMANDS = {
    "generate": (Generation, Sampling, CallPolicy),
    "label": (Labelling, CallPolicy),
    "prepare": (Split,),
    "evaluate": (Evaluation, Sampling, CallPolicy),
}
# Every prefix of a pipeline parameter, and the groups that are not stage settings.
PREFIXES = {prefix for prefix, _ in PIPELINE_GROUPS} | {"train", "gpu", "export"}
# The two task parameters whose pipeline parameter has another name, and why.
RENAMED = {
    "default_model": "base_model",  # generate: the base model writes on-policy titles
    "shard_count": "shards",  # generate: the fan-out's size
}


def _settings(cls):
    return [f for f in fields(cls) if "help" in f.metadata]


def _pipeline_inputs():
    from pipelines.pipeline import dpo_titles_pipeline

    return dpo_titles_pipeline.component_spec.inputs


@pytest.mark.parametrize(("prefix", "cls"), PIPELINE_GROUPS, ids=[p for p, _ in PIPELINE_GROUPS])
def test_every_pipeline_parameter_of_a_stage_has_its_settings_default(prefix, cls):
    inputs = _pipeline_inputs()
    for f in _settings(cls):
        name = parameter_name(prefix, f.name)
        if name in inputs:
            assert inputs[name].default == f.default, name


def test_every_prefixed_pipeline_parameter_is_a_setting_of_its_stage():
    inputs = _pipeline_inputs()
    known = {parameter_name(p, f.name) for p, cls in PIPELINE_GROUPS for f in _settings(cls)}
    known |= {TrainSettings.parameter(name) for name in TrainSettings.FIELDS}
    # Paths and switches of a stage that are not settings of a dataclass.
    known |= {"api_response_cache", "prepare_human_preferences_uri", "eval_ideas_uri"}
    known |= {"train_recipe", "train_overrides", "train_checkpoint_dir"}
    known |= {"api_secret"}  # the Kubernetes Secret that holds the back ends' keys
    # Where training runs (train_backend=trainjob: a Kubeflow Trainer TrainJob) and its knobs.
    known |= {"train_backend", "train_runtime", "train_timeout_minutes", "train_namespace"}
    for name in inputs:
        prefix = name.split("_", 1)[0]
        if prefix in PREFIXES and prefix not in ("gpu", "export"):
            assert name in known, f"{name} is not a setting of its stage"


def test_a_tasks_parameter_is_the_pipeline_parameter_without_its_stage_prefix():
    """One name per thing: the component's `titles_per_idea` is the pipeline's
    `gen_titles_per_idea`, its `seed` the run's `seed` or `eval_seed`, ..."""
    checked = 0
    for task, params in pipeline_wiring().items():
        if task.startswith(("for-loop", "condition")):
            continue  # the fan-out's and dsl.If's own plumbing: it hands every parameter on
        for param, (kind, source) in params.items():
            if kind != "param" or source.startswith("plan-shards"):
                continue
            allowed = {param, RENAMED.get(param)} | {parameter_name(p, param) for p in PREFIXES}
            assert source in allowed, f"{task}.{param} comes from {source}"
            checked += 1
    assert checked > 60


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_command_lines_defaults_are_the_settings_defaults(command):
    required = {
        "generate": ["--ideas", "i.csv", "--out", "c.csv"],
        "label": ["--candidates", "c.csv", "--out", "p.csv"],
        "prepare": ["--preferences", "p.csv", "--out", "ds"],
        "evaluate": [
            *("--base-model", "b", "--tuned-model", "t", "--dataset", "ds", "--out", "e"),
        ],
    }[command]
    parser = build_parser()
    args = parser.parse_args([command, *required])
    flags = {a.dest: a for a in parser.commands[command]._actions}
    for cls in COMMANDS[command]:
        assert settings_from(cls, args) == cls()
        for f in _settings(cls):
            assert f.name in flags, f"{command} has no flag for {cls.__name__}.{f.name}"
            assert f.metadata["help"] in flags[f.name].help


def test_help_shows_every_default(capsys):
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["generate", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "(default: 0.95)" in shown and "(default: 64)" in shown and "(default: hf)" in shown


# -- the back-end registry ----------------------------------------------------------------


def test_every_list_of_back_ends_is_the_registry():
    from dpo_titles.providers import API_KEYS, BACKENDS, GENERATORS, JUDGES, secret_env
    from pipelines.docker_local import passed_env

    assert GENERATORS == tuple(b.name for b in BACKENDS if b.generates)
    assert JUDGES == tuple(b.name for b in BACKENDS if b.judges)
    parser = build_parser()
    provider = next(a for a in parser.commands["generate"]._actions if a.dest == "provider")
    judge = next(a for a in parser.commands["label"]._actions if a.dest == "judge")
    assert tuple(provider.choices) == GENERATORS and tuple(judge.choices) == JUDGES
    # Every key is redacted, mounted from the Secret where an API is called, and passed into
    # the containers of a local run.
    assert set(API_KEYS) <= set(secret_env()) and set(secret_env()) <= set(passed_env())
    import yaml

    from tests.conftest import REPO

    platform = list(yaml.safe_load_all((REPO / "pipelines/dpo_titles_pipeline.yaml").read_text()))
    executors = platform[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    mounted = {
        k["secretKey"]
        for e in executors.values()
        for s in e.get("secretAsEnv", [])
        for k in s["keyToEnv"]
    }
    assert mounted == {*API_KEYS, "HF_TOKEN"}


def test_an_unknown_back_end_is_one_line_listing_the_known_ones():
    from dpo_titles.errors import UserError
    from dpo_titles.providers import make_judge

    with pytest.raises(UserError, match="unknown judge 'openai': choose one of rubric, together"):
        make_judge("openai")
    with pytest.raises(UserError, match="unknown judge 'hf'"):
        make_judge("hf")  # a back end that does not judge


# A back end a user adds: its module and one registry line, nothing else.
NEW_BACKEND_MODULE = '''
"""The `echo` back end: a chat "API" that answers from the prompt, for the registry test."""

from .api import ApiBackend


class EchoBackend(ApiBackend):
    def new_client(self):
        return None

    async def complete(self, payload: dict) -> dict:
        titles = [f"{i}. Echo title number {i}, written for whatever you asked" for i in (1, 2, 3)]
        return {"text": "\\n".join(titles), "finish": "stop"}
'''
NEW_BACKEND_LINE = """    Backend(
        "echo",
        "answers from the prompt (the registry test's)",
        generates=True,
        judges=False,
        client="echo:EchoBackend",
        key_env="ECHO_API_KEY",
        default_model="echo-1",
    ),
)
_BY_NAME ="""


def test_a_back_end_is_added_by_its_module_and_one_registry_line(tmp_path, ideas_csv):
    import os
    import shutil
    import subprocess
    import sys

    import yaml

    from tests.conftest import REPO

    src = tmp_path / "src"
    shutil.copytree(
        REPO / "src" / "dpo_titles",
        src / "dpo_titles",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    providers = src / "dpo_titles" / "providers"
    (providers / "echo.py").write_text(NEW_BACKEND_MODULE)
    registry = providers / "__init__.py"
    text = registry.read_text()
    assert text.count("\n)\n_BY_NAME =") == 1
    registry.write_text(text.replace("\n)\n_BY_NAME =", "\n" + NEW_BACKEND_LINE))

    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["PYTHONPATH"] = f"{src}{os.pathsep}{REPO}"

    def cli(*args, **extra):
        return subprocess.run(
            [sys.executable, "-m", "dpo_titles.cli", *args],
            cwd=tmp_path,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=300,
        )

    listed = cli("backends")
    assert listed.returncode == 0, listed.stderr
    echo = next(row for row in json.loads(listed.stdout) if row["name"] == "echo")
    assert echo["key"] == "ECHO_API_KEY" and echo["default model"] == "echo-1"
    assert "echo" in cli("generate", "--help").stdout
    assert "echo" not in cli("label", "--help").stdout.split("--judge")[1].split("--")[0]

    out = tmp_path / "cand.csv"
    no_key = cli("generate", "--ideas", str(ideas_csv), "--out", str(out), "--provider", "echo")
    assert no_key.returncode == 2 and "ECHO_API_KEY" in no_key.stderr
    assert len(no_key.stderr.strip().splitlines()) == 1 and not out.exists()

    secret = "echo-secret-value-1234567890"
    made = cli(
        "generate",
        "--ideas",
        str(ideas_csv),
        "--out",
        str(out),
        "--provider",
        "echo",
        "--n",
        "3",
        ECHO_API_KEY=secret,
    )
    assert made.returncode == 0, made.stderr
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * 12 and {r["provider"] for r in rows} == {"echo"}
    assert {r["model"] for r in rows} == {"echo-1"}
    assert secret not in made.stderr + made.stdout + out.read_text()

    # The compiled pipeline mounts its key from the Secret into the tasks that call back ends.
    compiled = tmp_path / "pipeline.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.compile", "--out", str(compiled)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    platform = list(yaml.safe_load_all(compiled.read_text()))[1]
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    mounted = {
        k["secretKey"]
        for e in executors.values()
        for s in e.get("secretAsEnv", [])
        for k in s["keyToEnv"]
    }
    assert "ECHO_API_KEY" in mounted
    # ... and a local run in containers passes it in.
    passed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pipelines.docker_local import passed_env; print(*passed_env())",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "ECHO_API_KEY" in passed.stdout.split(), passed.stderr


# -- the command line as people expect it --------------------------------------------------


@pytest.mark.parametrize("quiet", [False, True])
def test_stdout_holds_the_summary_alone_and_quiet_silences_the_bars(quiet, tiny_model, tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import bundled_ideas

    ideas = bundled_ideas(tmp_path / "ideas.csv", 3)
    out = tmp_path / "cand.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dpo_titles.cli",
            *(["-q"] if quiet else []),
            "generate",
            "--ideas",
            str(ideas),
            "--out",
            str(out),
            "--provider",
            "hf",
            "--model",
            str(tiny_model),
            "--n",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        # Not what an earlier `-q` run in this process left in the environment.
        env={k: v for k, v in os.environ.items() if not k.endswith("DISABLE_PROGRESS_BARS")},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["requested"] == 6
    bars = "ideas/s" in done.stderr or "it/s" in done.stderr
    assert bars is not quiet, done.stderr
    assert ("INFO" in done.stderr) is not quiet
