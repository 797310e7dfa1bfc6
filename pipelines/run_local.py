"""Run the pipeline on this machine through `kfp.local`: `python -m pipelines.run_local`.

The same pipeline definition that `make compile` compiles runs here with kfp.local's
SubprocessRunner, each task a subprocess of this Python. Its outputs are then gathered in
`runs/<run-id>/`, and `runs/latest` points at the newest complete run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import yaml

from dpo_titles.errors import UserError
from pipelines.params import parse_sets

PRESETS = Path(__file__).parent / "presets"


def load_preset(name: str) -> dict:
    path = Path(name) if name.endswith((".yaml", ".yml")) else PRESETS / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PRESETS.glob("*.yaml")))
        raise SystemExit(f"run-local: error: unknown preset {name!r}: choose one of {known}")
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SystemExit(f"run-local: error: cannot read preset {path}: {exc}") from None
    if not isinstance(params, dict):
        raise SystemExit(f"run-local: error: preset {path} must be a mapping of name: value")
    return params


def take_one_of_artifacts() -> None:
    """Let kfp.local pass on the model of whichever train branch ran.

    KFP 2.17 compiles a `dsl.OneOf` of artifacts and the cluster's driver resolves it, but
    kfp.local's orchestrator still expects one artifact per DAG output ("Expected 1 artifact in
    ArtifactSelectorSpec. Got: 2") while it handles a OneOf of parameters. `make run-local` runs
    this pipeline through kfp.local, so its artifacts get the parameters' rule: the one selector
    whose task produced a value. Only local runs install it; a compiled pipeline is untouched."""
    try:
        from kfp.local.orchestrator.orchestrator_utils import OrchestratorUtils
    except ImportError:  # another kfp layout: leave it as it is
        return
    original = OrchestratorUtils.get_dag_output_artifacts
    if getattr(original, "one_of_artifacts", False):
        return

    def get_dag_output_artifacts(cls, dag_outputs_spec, io_store):
        outputs = {}
        for key, spec in dag_outputs_spec.artifacts.items():
            found = []
            for selector in spec.artifact_selectors:
                try:
                    found.append(
                        io_store.get_task_output(
                            selector.producer_subtask, selector.output_artifact_key
                        )
                    )
                except (KeyError, ValueError):
                    if len(spec.artifact_selectors) == 1:
                        raise
            if len(found) != 1:
                raise ValueError(f"dsl.OneOf output {key!r}: {len(found)} branches produced it")
            outputs[key] = found[0]
        return outputs

    get_dag_output_artifacts.one_of_artifacts = True
    OrchestratorUtils.get_dag_output_artifacts = classmethod(get_dag_output_artifacts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="local", help="parameter preset in pipelines/presets")
    parser.add_argument("--ideas", help="ideas CSV (overrides the preset's ideas_uri)")
    parser.add_argument("--runs-dir", default="runs", help="where run folders are written")
    parser.add_argument("--run-id", help="name of the run folder (default: a timestamp)")
    parser.add_argument(
        "--runner",
        choices=["subprocess", "docker"],
        default="subprocess",
        help="subprocess: each task a process of this Python; docker: each task in its image "
        "(Docker or Podman at DOCKER_HOST), as on a cluster",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one pipeline parameter (repeatable)",
    )
    args = parser.parse_args(argv)

    params = load_preset(args.preset)
    if args.ideas:
        params["ideas_uri"] = args.ideas
    try:
        params.update(parse_sets(args.set))
    except UserError as exc:
        raise SystemExit(f"run-local: error: {exc}") from None

    from pipelines.run_folder import gather_outputs, resolve_local_paths, start_run_dir

    api = None
    if args.runner == "docker":
        from pipelines import docker_local

        try:
            api = docker_local.client()
            # Before the pipeline is imported: its components read their images when defined.
            for note in docker_local.choose_images(api):
                print(f"run-local: {note}", flush=True)
        except RuntimeError as exc:
            print(f"run-local: error: {exc}", file=sys.stderr)
            return 2

    from pipelines.params import check_parameters

    try:
        params = resolve_local_paths(check_parameters(params))
        run_dir = start_run_dir(args.runs_dir, args.run_id)
    except UserError as exc:
        print(f"run-local: error: {exc}", file=sys.stderr)
        return 2
    print(f"run-local: run {run_dir.name}; parameters: {json.dumps(params)}", flush=True)

    from kfp import local

    from pipelines.pipeline import dpo_titles_pipeline

    root = run_dir / "kfp"
    if api is not None:
        try:
            runner = docker_local.runner(params, root)
        except RuntimeError as exc:
            print(f"run-local: error: {exc}", file=sys.stderr)
            return 2
        engine = api.version()["Components"][0]["Name"]
        print(f"run-local: every task in its image, through {engine}", flush=True)
    else:
        runner = local.SubprocessRunner(use_venv=False)
    take_one_of_artifacts()
    local.init(runner=runner, pipeline_root=str(root))
    began = time.perf_counter()
    # kfp.local warns, per task, that GPU requests and display names do nothing on one machine;
    # say it once instead.
    warnings.filterwarnings("ignore", message=".*have no effect in the current local runner")
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="kfp")
    print("run-local: GPU requests and Kubernetes settings are ignored on this machine", flush=True)
    try:
        dpo_titles_pipeline(**params)
    except (RuntimeError, TypeError, ValueError) as exc:
        if api is not None:
            docker_local.hand_back(api, root, docker_local.base_image())
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(
            f"run-local: error: {first} (logs above; partial outputs in {run_dir})", file=sys.stderr
        )
        return 1
    if api is not None:
        docker_local.hand_back(api, root, docker_local.base_image())
    try:
        report = gather_outputs(run_dir, minutes=(time.perf_counter() - began) / 60)
    except UserError as exc:
        print(f"run-local: error: {exc}", file=sys.stderr)
        return 1
    print(f"run-local: finished in {(time.perf_counter() - began) / 60:.1f} min")
    print(f"run-local: report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
