"""`dpo-titles`: run each stage alone, on files, like the original numbered scripts."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from . import __version__
from .api_calls import CallPolicy
from .errors import NothingMade, UserError, exit_status, one_line
from .files import DEFAULT_MAX_INPUT_MB, input_limit
from .providers.hf import DEFAULT_BATCH_SIZE
from .settings import SettingError


def _overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--set takes KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block) and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--force",
        action="store_true",
        help="replace the output if it is an earlier, unchanged output of dpo-titles (never "
        "anything else)",
    )


def _add_sampling(p: argparse.ArgumentParser, seed: int) -> None:
    p.add_argument(
        "--temperature",
        type=float,
        default=0.9,
        help="sampling temperature; 0 is deterministic (greedy for one title, else a beam "
        "search returning the best beams)",
    )
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling probability mass")
    p.add_argument("--max-new-tokens", type=int, default=40, help="longest answer, in tokens")
    p.add_argument("--seed", type=int, default=seed, help="random seed for sampling")


def _add_api(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cache-dir",
        help="API back ends: folder of the response cache (resumes without paying "
        "twice); default: no cache",
    )
    p.add_argument("--max-in-flight", type=int, default=16, help="API: most requests at once")
    p.add_argument(
        "--rpm",
        dest="requests_per_minute",
        type=float,
        default=0.0,
        help="API: most requests started per minute (0: none)",
    )
    p.add_argument(
        "--timeout", dest="timeout_s", type=float, default=60.0, help="API: seconds per request"
    )
    p.add_argument(
        "--max-retries",
        type=int,
        help="API: retries of a failed request (429, 5xx, time-out, unreadable answer; "
        f"default {CallPolicy().max_retries})",
    )


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument(
        "--max-input-mb",
        type=float,
        default=DEFAULT_MAX_INPUT_MB,
        help=f"refuse an input CSV larger than this, in MiB (default {DEFAULT_MAX_INPUT_MB:g})",
    )
    parser = Parser(
        prog="dpo-titles",
        description="Tune a small language model with DPO to write YouTube titles, stage by stage.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.commands = {}

    class Sub:
        """Every command gets the common options, and is kept by name to name its flags."""

        @staticmethod
        def add_parser(name: str, **kwargs) -> argparse.ArgumentParser:
            made = commands.add_parser(name, parents=[common], **kwargs)
            parser.commands[name] = made
            return made

    sub = Sub()

    p = sub.add_parser("validate", help="check an ideas CSV and report every problem by row")
    p.add_argument("--ideas", required=True, help="CSV file with an `idea` column (or gs://)")
    p.add_argument("--out", help="also write the validated ideas here")
    _add_output(p)

    p = sub.add_parser("generate", help="write N candidate titles per idea")
    p.add_argument(
        "--ideas", required=True, help="CSV file with an `idea` column, local or gs://bucket/path"
    )
    p.add_argument("--out", required=True, help="candidates CSV to write")
    _add_output(p)
    p.add_argument(
        "--provider", default="hf", help="back end that writes titles: hf, together, gemini"
    )
    p.add_argument(
        "--model",
        help="model for the provider (hf: a local folder or a hub id; API back ends: "
        "a model name, default: the back end's default)",
    )
    p.add_argument("--n", type=int, default=4, help="titles per idea (at least 2)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"hf: sequences sampled at once (default {DEFAULT_BATCH_SIZE})",
    )
    _add_sampling(p, seed=42)
    _add_api(p)

    p = sub.add_parser("label", help="judge every pair of an idea's titles, in both orders")
    p.add_argument("--candidates", required=True, help="candidates CSV from `generate`")
    p.add_argument("--out", required=True, help="preferences CSV to write")
    _add_output(p)
    p.add_argument(
        "--judge", default="rubric", help="back end that compares titles: rubric, together, gemini"
    )
    p.add_argument(
        "--mode",
        default="listwise",
        choices=["pairwise", "listwise"],
        help="pairwise: each pair in both orders; listwise: rank all titles twice, shuffled",
    )
    p.add_argument("--model", help="API judges: model name (default: the back end's default)")
    _add_api(p)

    p = sub.add_parser("prepare", help="build TRL's preference dataset, split by idea")
    p.add_argument("--preferences", required=True, help="preferences CSV from `label`")
    p.add_argument("--out", required=True, help="dataset folder to write")
    _add_output(p)
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of ideas held out")
    p.add_argument("--seed", type=int, default=42, help="seed of the split")
    p.add_argument(
        "--human-preferences",
        help="extra human-labelled pairs: CSV with idea, chosen, rejected (local or gs://)",
    )

    p = sub.add_parser("train", help="tune a model with DPO on a prepared dataset")
    p.add_argument("--model", required=True, help="base model: a local folder or a hub id")
    p.add_argument("--dataset", required=True, help="dataset folder from `prepare`")
    p.add_argument("--out", required=True, help="folder for the tuned model")
    _add_output(p)
    p.add_argument(
        "--recipe", default="seed", help="recipe name (seed, lora, local) or a YAML path"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one recipe field, e.g. --set learning_rate=5e-6 (repeatable)",
    )
    p.add_argument(
        "--checkpoint-dir",
        help="save checkpoints here and resume from the last one when run again (default: none)",
    )
    p.add_argument(
        "--base-name",
        help="what to call the base model in the card and checkpoints (default: --model; set "
        "when --model is a local copy of a gs:// or hub model)",
    )
    p.add_argument(
        "--num-processes",
        type=int,
        default=1,
        help="GPUs on this node to train on, one process each via accelerate (default: 1)",
    )

    p = sub.add_parser("evaluate", help="compare base and tuned models on held-out ideas")
    p.add_argument("--base-model", required=True, help="the model before tuning")
    p.add_argument("--tuned-model", required=True, help="the model folder from `train`")
    p.add_argument(
        "--dataset", required=True, help="dataset folder from `prepare` (its held-out ideas)"
    )
    p.add_argument("--out", required=True, help="folder for comparisons.csv and metrics.json")
    _add_output(p)
    p.add_argument(
        "--judge",
        default="rubric",
        help="back end that compares base and tuned titles: rubric, together, gemini "
        "(best not the one that labelled the training pairs)",
    )
    p.add_argument("--judge-model", help="API judge: model name (default: the back end's)")
    p.add_argument(
        "--eval-ideas",
        help="extra held-out ideas CSV (column idea) evaluated beside the validation ideas",
    )
    p.add_argument("--k", type=int, default=4, help="titles per idea from each model")
    p.add_argument(
        "--reward-pairs",
        type=int,
        default=512,
        help="validation pairs for the implicit reward accuracy (0: skip)",
    )
    _add_sampling(p, seed=1234)
    _add_api(p)

    p = sub.add_parser("report", help="write the HTML report of a run")
    p.add_argument("--eval", required=True, help="folder from `evaluate`")
    p.add_argument("--model", required=True, help="tuned model folder (for the training curves)")
    p.add_argument("--out", required=True, help="HTML file to write")
    _add_output(p)
    p.add_argument("--candidates", help="candidates CSV (its generator settings are shown)")
    p.add_argument("--dataset", help="dataset folder (its split settings are shown)")
    p.add_argument("--config", help="JSON file of extra configuration to show in the report")

    p = sub.add_parser("export", help="send the dataset and the model to gs:// and/or the Hub")
    p.add_argument("--dataset", help="dataset folder from `prepare`")
    p.add_argument("--model", help="model folder from `train`")
    p.add_argument("--dataset-uri", default="", help="gs://bucket/prefix for the dataset folder")
    p.add_argument("--model-uri", default="", help="gs://bucket/prefix for the model folder")
    p.add_argument("--hub-dataset-repo", default="", help="Hub dataset repo owner/name")
    p.add_argument("--hub-model-repo", default="", help="Hub model repo owner/name")
    p.add_argument(
        "--public", action="store_true", help="make new Hub repos public (default: private)"
    )

    p = sub.add_parser("tiny-model", help="build the tiny offline model from a title corpus")
    p.add_argument("--corpus", default="data/title_corpus.csv", help="CSV with idea,title columns")
    p.add_argument("--out", default="models/tiny", help="folder to write")
    _add_output(p)
    p.add_argument("--epochs", type=int, help="training epochs (default: the built-in setting)")
    p.add_argument("--seed", type=int, help="random seed (default: the built-in setting)")
    return parser


def run(args: argparse.Namespace) -> dict:
    from . import stages

    sampling = {}
    if hasattr(args, "temperature"):
        sampling = {
            "temperature": args.temperature,
            "top_p": args.top_p,
            "max_new_tokens": args.max_new_tokens,
            "seed": args.seed,
        }
    match args.command:
        case "validate":
            return stages.validate(args.ideas, args.out, force=args.force)
        case "generate":
            return stages.generate(
                args.ideas,
                args.out,
                args.provider,
                args.model,
                args.n,
                batch_size=args.batch_size,
                cache_dir=args.cache_dir,
                max_in_flight=args.max_in_flight,
                requests_per_minute=args.requests_per_minute,
                timeout_s=args.timeout_s,
                max_retries=args.max_retries,
                force=args.force,
                **sampling,
            )
        case "label":
            return stages.label(
                args.candidates,
                args.out,
                args.judge,
                args.mode,
                args.model,
                cache_dir=args.cache_dir,
                max_in_flight=args.max_in_flight,
                requests_per_minute=args.requests_per_minute,
                timeout_s=args.timeout_s,
                max_retries=args.max_retries,
                force=args.force,
            )
        case "prepare":
            return stages.prepare(
                args.preferences,
                args.out,
                args.val_fraction,
                args.seed,
                human_preferences_path=args.human_preferences,
                force=args.force,
            )
        case "train":
            return stages.train(
                args.model,
                args.dataset,
                args.out,
                args.recipe,
                _overrides(args.set),
                checkpoint_dir=args.checkpoint_dir,
                num_processes=args.num_processes,
                base_name=args.base_name,
                force=args.force,
            )
        case "evaluate":
            return stages.evaluate(
                args.base_model,
                args.tuned_model,
                args.dataset,
                args.out,
                args.judge,
                args.k,
                **sampling,
                judge_model=args.judge_model,
                eval_ideas_path=args.eval_ideas,
                cache_dir=args.cache_dir,
                max_in_flight=args.max_in_flight,
                requests_per_minute=args.requests_per_minute,
                timeout_s=args.timeout_s,
                max_retries=args.max_retries,
                reward_pairs=args.reward_pairs,
                force=args.force,
            )
        case "report":
            config = {}
            if args.config:
                from .files import read_json

                config = read_json(args.config, "configuration", dict)
            return stages.report(
                args.eval,
                args.model,
                args.out,
                config,
                args.candidates,
                args.dataset,
                force=args.force,
            )
        case "export":
            from .exports import Exports

            return stages.export(
                args.dataset,
                args.model,
                Exports(
                    dataset_uri=args.dataset_uri,
                    model_uri=args.model_uri,
                    hub_dataset_repo=args.hub_dataset_repo,
                    hub_model_repo=args.hub_model_repo,
                    hub_private=not args.public,
                ),
            )
        case "tiny-model":
            from dataclasses import replace

            from .tiny_model import TinyModelConfig, build_tiny_model

            config = TinyModelConfig()
            if args.epochs is not None:
                config = replace(config, epochs=args.epochs)
            if args.seed is not None:
                config = replace(config, seed=args.seed)
            build_tiny_model(args.corpus, args.out, config, force=args.force)
            return {"out": args.out}
    raise AssertionError(args.command)


def _flag(parser: argparse.ArgumentParser, args: argparse.Namespace, setting: str) -> str:
    """How a setting is spelt on the command line: its flag, `--set NAME` for a recipe field
    given that way, or the recipe field itself."""
    for action in parser.commands[args.command]._actions:
        if action.dest == setting and action.option_strings:
            return action.option_strings[0]
    if args.command == "train":
        given = {pair.partition("=")[0].strip() for pair in args.set}
        return f"--set {setting}" if setting in given else f"recipe field {setting}"
    return setting


def main(argv: list[str] | None = None) -> int:
    """The `dpo-titles` command: run one stage; bad input is one line and exit status 2."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a bad flag (its one line is printed), or --help / --version
        return exc.code if isinstance(exc.code, int) else 2
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,  # to this call's stderr, when main() runs more than once in a process
    )
    # The SDKs log every HTTP request at INFO; the progress bars already say how it goes.
    for noisy in ("httpx", "httpx2", "google_genai", "together"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        with input_limit(args.max_input_mb):
            result = run(args)
    except SettingError as exc:
        if exc.setting == "max_input_mb":
            exc = exc.renamed("--max-input-mb")
        else:
            exc = exc.renamed(_flag(parser, args, exc.setting))
        print(one_line(args.command, exc), file=sys.stderr)
        return 2
    except (UserError, NothingMade) as exc:
        print(one_line(args.command, exc), file=sys.stderr)
        return exit_status(exc)
    except KeyboardInterrupt:
        print(f"dpo-titles {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("DPO_TITLES_DEBUG"):
            raise
        from .providers.api import redact

        print(
            f"dpo-titles {args.command}: internal error: {type(exc).__name__}: "
            f"{redact(str(exc)).splitlines()[0] if str(exc) else ''} "
            "(set DPO_TITLES_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1
    if not args.quiet:
        print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
