"""Submit the compiled pipeline to a Kubeflow Pipelines endpoint: `python -m pipelines.submit`.

The host comes from `--host` or `KFP_HOST`; a bearer token, if the endpoint needs one, only from
`KFP_TOKEN` (never a flag, so it stays out of shell history and logs). Parameters come from a YAML
file (`--params`, e.g. `pipelines/presets/original.yaml`) and `--set NAME=VALUE`.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
import warnings
from pathlib import Path

import yaml

from dpo_titles.errors import UserError
from pipelines.compile import DEFAULT_OUT
from pipelines.params import check_parameters, parse_sets


def unreachable(host: str) -> str | None:
    """Why the endpoint cannot be reached, or None. kfp.Client would instead retry its health
    check five times, five seconds apart, logging a traceback each time."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{host.rstrip('/')}/apis/v2beta1/healthz")
    if os.environ.get("KFP_TOKEN"):
        request.add_header("Authorization", f"Bearer {os.environ['KFP_TOKEN']}")
    try:
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError:
        return None  # it answered (perhaps 401/403); the client reports what follows
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))
    return None


def fail(message: str) -> int:
    print(f"submit: error: {message}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--host", default=os.environ.get("KFP_HOST"), help="KFP API endpoint (default: $KFP_HOST)"
    )
    parser.add_argument("--pipeline", default=DEFAULT_OUT, help="compiled pipeline YAML")
    parser.add_argument("--params", help="YAML file of pipeline parameters")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="one pipeline parameter (repeatable; YAML values)",
    )
    parser.add_argument("--experiment", default="dpo-titles", help="experiment name")
    parser.add_argument("--run-name", help="run name (default: dpo-titles-<timestamp>)")
    parser.add_argument("--namespace", help="Kubeflow profile namespace (multi-user installs)")
    args = parser.parse_args(argv)

    if not args.host:
        return fail("no KFP endpoint: set KFP_HOST or pass --host")
    pipeline = Path(args.pipeline)
    if not pipeline.is_file():
        return fail(f"{pipeline} does not exist: run `make compile` first")
    params: dict = {}
    if args.params:
        path = Path(args.params)
        if not path.is_file():
            return fail(f"parameter file {path} does not exist")
        params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(params, dict):
            return fail(f"parameter file {path} must hold a mapping of NAME: VALUE")
    try:
        params.update(parse_sets(args.set))
    except UserError as exc:
        return fail(str(exc))

    try:
        params = check_parameters(params)
    except UserError as exc:
        return fail(str(exc))
    run_name = args.run_name or f"dpo-titles-{_dt.datetime.now():%Y%m%d-%H%M%S}"

    why = unreachable(args.host)
    if why:
        return fail(f"cannot reach {args.host} ({why}): check KFP_HOST and your connection")

    import logging

    import kfp

    warnings.filterwarnings("ignore", category=FutureWarning, module="kfp")
    # kfp.Client logs failures with tracebacks on the root logger; this script reports one line.
    logging.getLogger().setLevel(logging.CRITICAL)
    try:
        client = kfp.Client(
            host=args.host,
            existing_token=os.environ.get("KFP_TOKEN") or None,
            namespace=args.namespace,
        )
        run = client.create_run_from_pipeline_package(
            str(pipeline),
            arguments=params,
            run_name=run_name,
            experiment_name=args.experiment,
            namespace=args.namespace,
        )
    except Exception as exc:  # the client raises many types; the user needs one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return fail(f"submitting to {args.host} failed: {type(exc).__name__}: {first[:300]}")
    print(f"submit: run {run_name} ({run.run_id}) in experiment {args.experiment}")
    print(f"submit: {args.host.rstrip('/')}/#/runs/details/{run.run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
