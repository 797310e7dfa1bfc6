"""`dpo-titles`: run each stage alone, on files, like the original numbered scripts.

Each stage's flags are made from its settings dataclass (`settings.py`, `api_calls.CallPolicy`),
so the command line and the pipeline cannot drift apart. A stage's summary (JSON) goes to
standard output alone; logs, progress and the trainer's lines go to standard error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from dataclasses import fields

from . import __version__
from .api_calls import CallPolicy
from .errors import NothingMade, UserError, exit_status, one_line
from .files import DEFAULT_MAX_INPUT_MB, input_limit
from .settings import (
    Agreement,
    Evaluation,
    Generation,
    Labelling,
    Sampling,
    SettingError,
    Split,
    parse_assignments,
)


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block), exit status 2, and every
    option's default in --help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


_TYPES = {"int": int, "float": float, "str": str}


def add_settings(parser: argparse.ArgumentParser, cls, skip: tuple[str, ...] = ()) -> None:
    """One flag per setting of `cls` (a field with a help line): `--field-name`, or the flag
    the field names (then `--field-name` is its alias), typed and defaulted by the field."""
    from .providers import GENERATORS, JUDGES

    for f in fields(cls):
        meta = f.metadata
        if "help" not in meta or f.name in skip:
            continue
        long = f"--{f.name.replace('_', '-')}"
        flags = [meta["flag"], long] if meta.get("flag") else [long]
        choices = {"generate": GENERATORS, "judge": JUDGES}.get(meta.get("choices"), None)
        if choices is None and isinstance(meta.get("choices"), tuple):
            choices = meta["choices"]
        parser.add_argument(
            *flags,
            dest=f.name,
            type=_TYPES[str(f.type)],
            default=f.default,
            choices=choices,
            help=meta["help"],
        )


def settings_from(cls, args: argparse.Namespace, **given):
    """An instance of the settings dataclass `cls` from the parsed flags (and `given`)."""
    values = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    return cls(**{**values, **given})


def _add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--force",
        action="store_true",
        help="replace the output if it is an earlier, unchanged output of dpo-titles (never "
        "anything else)",
    )


def _add_api(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cache-dir",
        help="API back ends: folder of the response cache (resumes without paying twice); "
        "default: no cache",
    )
    add_settings(p, CallPolicy)


def build_parser() -> argparse.ArgumentParser:
    """The `dpo-titles` command line: one sub-command per stage."""
    from .providers import GENERATORS, JUDGES
    from .recipes import available

    common = Parser(add_help=False)
    common.add_argument(
        "--max-input-mb",
        type=float,
        default=DEFAULT_MAX_INPUT_MB,
        help="refuse an input CSV larger than this, in MiB",
    )
    parser = Parser(
        prog="dpo-titles",
        description="Tune a small language model with DPO to write YouTube titles, stage by stage.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="warnings and errors only, no progress bars (the summary still goes to stdout)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.commands = {}

    def sub(name: str, **kwargs) -> argparse.ArgumentParser:
        made = commands.add_parser(name, parents=[common], **kwargs)
        parser.commands[name] = made
        return made

    p = sub("validate", help="check an ideas CSV and report every problem by row")
    p.add_argument("--ideas", required=True, help="CSV file with an `idea` column (or gs://)")
    p.add_argument("--out", help="also write the validated ideas here")
    _add_output(p)

    p = sub("generate", help="write N candidate titles per idea")
    p.add_argument("--ideas", required=True, help="CSV with an `idea` column, local or gs://")
    p.add_argument("--out", required=True, help="candidates CSV to write")
    _add_output(p)
    add_settings(p, Generation)
    add_settings(p, Sampling)
    _add_api(p)

    p = sub("label", help="judge every pair of an idea's titles, in both orders")
    p.add_argument("--candidates", required=True, help="candidates CSV from `generate`")
    p.add_argument("--out", required=True, help="preferences CSV to write")
    _add_output(p)
    add_settings(p, Labelling)
    _add_api(p)

    p = sub("agreement", help="measure a judge against human-labelled pairs (kappa, flips)")
    p.add_argument(
        "--human",
        required=True,
        help="human-labelled pairs: CSV with idea, chosen, rejected (and verdict: tie), e.g. "
        "from `annotate` (local or gs://)",
    )
    p.add_argument("--out", help="also write the figures here (JSON)")
    _add_output(p)
    add_settings(p, Labelling)
    add_settings(p, Agreement)
    _add_api(p)

    p = sub("prepare", help="build TRL's preference dataset, split by idea")
    p.add_argument("--preferences", required=True, help="preferences CSV from `label`")
    p.add_argument("--out", required=True, help="dataset folder to write")
    _add_output(p)
    add_settings(p, Split)
    p.add_argument(
        "--human-preferences",
        help="extra human-labelled pairs: CSV with idea, chosen, rejected (local or gs://)",
    )

    p = sub("train", help="tune a model with DPO on a prepared dataset")
    p.add_argument("--model", required=True, help="base model: a local folder or a hub id")
    p.add_argument("--dataset", required=True, help="dataset folder from `prepare`")
    p.add_argument("--out", required=True, help="folder for the tuned model")
    _add_output(p)
    p.add_argument(
        "--recipe",
        default="original",
        help=f"recipe name ({', '.join(available())}) or a YAML path",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override one recipe field (a DPOConfig field, or lora.r, lora.merge, ...), e.g. "
        "--set learning_rate=5e-6 (repeatable)",
    )
    p.add_argument(
        "--checkpoint-dir",
        help="save checkpoints here and resume from the last one when run again",
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
        help="GPUs on this node to train on, one process each (under torchrun)",
    )

    p = sub("evaluate", help="compare base and tuned models on held-out ideas")
    p.add_argument("--base-model", required=True, help="the model before tuning")
    p.add_argument("--tuned-model", required=True, help="the model folder from `train`")
    p.add_argument("--dataset", required=True, help="dataset folder from `prepare`")
    p.add_argument("--out", required=True, help="folder for comparisons.csv and metrics.json")
    _add_output(p)
    add_settings(p, Evaluation)
    add_settings(p, Sampling)
    p.add_argument(
        "--eval-ideas",
        help="extra held-out ideas CSV (column idea) evaluated beside the validation ideas",
    )
    _add_api(p)

    p = sub("report", help="write the HTML report of a run")
    p.add_argument("--eval", required=True, help="folder from `evaluate`")
    p.add_argument("--model", required=True, help="tuned model folder (for the training curves)")
    p.add_argument("--out", required=True, help="HTML file to write")
    _add_output(p)
    p.add_argument("--candidates", help="candidates CSV (its generator settings are shown)")
    p.add_argument("--dataset", help="dataset folder (its split settings are shown)")
    p.add_argument("--config", help="JSON file of extra configuration to show in the report")
    p.add_argument(
        "--agreement", help="the judge's agreement with people (JSON from `agreement --out`)"
    )
    p.add_argument(
        "--human-eval",
        help="blind human verdicts on the comparisons (CSV from `annotate --comparisons`)",
    )

    p = sub("export", help="send the dataset and the model to gs:// and/or the Hub")
    p.add_argument("--dataset", help="dataset folder from `prepare`")
    p.add_argument("--model", help="model folder from `train`")
    p.add_argument("--dataset-uri", default="", help="gs://bucket/prefix for the dataset folder")
    p.add_argument("--model-uri", default="", help="gs://bucket/prefix for the model folder")
    p.add_argument("--hub-dataset-repo", default="", help="Hub dataset repo owner/name")
    p.add_argument("--hub-model-repo", default="", help="Hub model repo owner/name")
    p.add_argument("--public", action="store_true", help="make new Hub repos public")

    p = sub("tiny-model", help="build the tiny offline model from a title corpus")
    p.add_argument("--corpus", default="data/title_corpus.csv", help="CSV with idea,title columns")
    p.add_argument("--out", default="models/tiny", help="folder to write")
    _add_output(p)
    p.add_argument("--epochs", type=int, help="chat-phase epochs (default: the built-in setting)")
    p.add_argument("--seed", type=int, help="random seed (default: the built-in setting)")
    p.add_argument(
        "--if-changed",
        action="store_true",
        help="keep --out when it was built from this corpus, builder and settings; else rebuild",
    )

    from .annotate import DEFAULT_SEED

    p = sub("annotate", help="label title pairs yourself, on a local web page")
    p.add_argument(
        "--candidates", help="candidates CSV from `generate`: pairs of each idea's titles"
    )
    p.add_argument(
        "--comparisons",
        help="comparisons.csv from `evaluate`: base against tuned title (the page never says "
        "which is which)",
    )
    p.add_argument(
        "--out",
        required=True,
        help="answers CSV, saved after every answer; an earlier one of `annotate` is resumed",
    )
    p.add_argument(
        "--pairs", type=int, help="ask a seeded sample of this many pairs, spread over the ideas"
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the sample and sides")
    p.add_argument(
        "--preferences",
        help="with --candidates: ask only the pairs the judge labelled in this CSV from `label`",
    )
    p.add_argument("--labeller", help="name for the labeller column (default: your user name)")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0: any free one")

    sub(
        "backends",
        help=f"list the back ends: writers {', '.join(GENERATORS)}; judges {', '.join(JUDGES)}",
    )
    return parser


def run(args: argparse.Namespace) -> dict | list:
    """Run the sub-command `args` names; returns its summary."""
    from . import stages

    policy = settings_from(CallPolicy, args) if hasattr(args, "max_in_flight") else None
    match args.command:
        case "validate":
            return stages.validate(args.ideas, args.out, force=args.force)
        case "generate":
            return stages.generate(
                args.ideas,
                args.out,
                settings_from(Generation, args),
                settings_from(Sampling, args),
                policy=policy,
                cache_dir=args.cache_dir,
                force=args.force,
            )
        case "label":
            return stages.label(
                args.candidates,
                args.out,
                settings_from(Labelling, args),
                policy=policy,
                cache_dir=args.cache_dir,
                force=args.force,
            )
        case "agreement":
            from .agreement import agreement_table

            result = stages.agreement(
                args.human,
                args.out,
                settings_from(Labelling, args),
                settings_from(Agreement, args),
                policy=policy,
                cache_dir=args.cache_dir,
                force=args.force,
            )
            print(agreement_table(result), file=sys.stderr)
            return result
        case "prepare":
            return stages.prepare(
                args.preferences,
                args.out,
                settings_from(Split, args),
                human_preferences_path=args.human_preferences,
                force=args.force,
            )
        case "train":
            return stages.train(
                args.model,
                args.dataset,
                args.out,
                args.recipe,
                parse_assignments(args.set, flag="--set"),
                checkpoint_dir=args.checkpoint_dir,
                num_processes=args.num_processes,
                base_name=args.base_name,
                force=args.force,
                progress=not args.quiet,
            )
        case "evaluate":
            return stages.evaluate(
                args.base_model,
                args.tuned_model,
                args.dataset,
                args.out,
                settings_from(Evaluation, args),
                settings_from(Sampling, args),
                eval_ideas_path=args.eval_ideas,
                policy=policy,
                cache_dir=args.cache_dir,
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
                agreement_path=args.agreement,
                human_eval_path=args.human_eval,
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

            from .tiny_model import TinyModelConfig, build_tiny_model, is_up_to_date

            config = TinyModelConfig()
            if args.epochs is not None:
                config = replace(config, epochs=args.epochs)
            if args.seed is not None:
                config = replace(config, seed=args.seed)
            if args.if_changed and is_up_to_date(args.out, args.corpus, config):
                logging.getLogger(__name__).info("%s is up to date with %s", args.out, args.corpus)
                return {"out": args.out, "built": False}
            # A stale model of our own is replaced; anything else at --out still needs --force.
            build_tiny_model(args.corpus, args.out, config, force=args.force or args.if_changed)
            return {"out": args.out, "built": True}
        case "annotate":
            from .annotate import annotate

            return annotate(
                args.out,
                candidates=args.candidates,
                comparisons=args.comparisons,
                pairs=args.pairs,
                seed=args.seed,
                preferences=args.preferences,
                labeller=args.labeller,
                port=args.port,
            )
        case "backends":
            from .providers import describe

            return describe()
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


def quiet_progress() -> None:
    """No progress bars: tqdm's (ours, transformers', datasets'), and the Hub's."""
    from functools import partialmethod

    from tqdm import std

    std.tqdm.__init__ = partialmethod(std.tqdm.__init__, disable=True)
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"


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
    if args.quiet:
        quiet_progress()
    summary = sys.stdout
    try:
        # Whatever a library prints (the trainer's log lines) goes to stderr; stdout holds the
        # summary alone.
        with input_limit(args.max_input_mb), contextlib.redirect_stdout(sys.stderr):
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
        from .redaction import redact

        print(
            f"dpo-titles {args.command}: internal error: {type(exc).__name__}: "
            f"{redact(str(exc)).splitlines()[0] if str(exc) else ''} "
            "(set DPO_TITLES_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1
    from .launch import world

    if world()[0] == 0:  # under torchrun, one summary for the run, not one per process
        print(json.dumps(result, default=str), file=summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
