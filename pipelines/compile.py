"""Compile the pipeline to YAML: `python -m pipelines.compile [--out PATH]`."""

import argparse
import sys

from kfp import compiler

from pipelines.pipeline import dpo_titles_pipeline

DEFAULT_OUT = "pipelines/dpo_titles_pipeline.yaml"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=DEFAULT_OUT, help="YAML file to write")
    args = parser.parse_args(argv)
    compiler.Compiler().compile(dpo_titles_pipeline, package_path=args.out)
    print(f"compiled pipeline written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
