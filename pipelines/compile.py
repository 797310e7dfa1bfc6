"""Compile the pipeline to YAML: `python -m pipelines.compile [--out PATH]`."""

import argparse
import ast
import json
import re
import sys
from pathlib import Path

from kfp import compiler

from pipelines.pipeline import dpo_titles_pipeline

DEFAULT_OUT = "pipelines/dpo_titles_pipeline.yaml"


_DEFAULT = re.compile(r"^(#\s+\w+: (?:dict|list) \[Default: )(.*)(\]\s*)$")


def canonical_header(path: Path) -> None:
    """KFP's comment header prints dict defaults in an order that changes from run to run;
    sort their keys so that the committed YAML is byte-for-byte reproducible."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for i, line in enumerate(lines):
        if not line.startswith("#"):
            break
        match = _DEFAULT.match(line)
        if match:
            value = ast.literal_eval(match.group(2))
            lines[i] = match.group(1) + json.dumps(value, sort_keys=True) + match.group(3)
    path.write_text("".join(lines), encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=DEFAULT_OUT, help="YAML file to write")
    args = parser.parse_args(argv)
    compiler.Compiler().compile(dpo_titles_pipeline, package_path=args.out)
    canonical_header(Path(args.out))
    print(f"compiled pipeline written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
