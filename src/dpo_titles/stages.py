"""One function per pipeline stage, on files and plain values.

The command line (`cli.py`) and the KFP components (`components/`) both call these, so a stage
does the same thing wherever it runs. Each returns a flat dict of figures for logs and Metrics.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from .errors import NothingMade, UserError
from .files import input_limit_bytes, read_csv, read_json, write_json
from .outputs import check_companion, check_output
from .providers.hf import DEFAULT_BATCH_SIZE
from .settings import check_number, check_seed

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
COMPARISONS_FILE = "comparisons.csv"


def local_input(uri: str | None, *, max_bytes: int | None = None) -> str | None:
    """A local path for an input that may be a gs:// URI (a file or a model folder), downloaded
    to a temporary folder; local paths and hub ids come back unchanged. `max_bytes` refuses a
    single object over that size before it is downloaded."""
    from .storage import is_gcs, localize

    if not uri or not is_gcs(uri):
        return uri
    # A fresh folder of this pod's own: shard pods or processes sharing a cache volume would
    # otherwise race on one download.
    return localize(uri, max_bytes=max_bytes)


def local_csv(uri: str | None) -> str | None:
    """`local_input` for a CSV a user gave: within the input size limit."""
    return local_input(uri, max_bytes=input_limit_bytes())


def validate(
    ideas_path: str,
    out_path: str | None = None,
    backends=(),
    exports=None,
    eval_ideas_path: str | None = None,
    human_preferences_path: str | None = None,
    force: bool = False,
) -> dict:
    """Check the inputs before anything expensive: the ideas file, and that the API keys of the
    chosen back ends are set. Optionally write the validated ideas for later stages."""
    from .dataset import read_human_preferences
    from .ideas import load_ideas, write_ideas
    from .providers import missing_keys

    if out_path:
        check_output(out_path, inputs=[ideas_path], force=force, what="--out", folder=False)
    missing = missing_keys(*[b.strip() for b in backends if b and b.strip()])
    if missing:
        raise UserError(
            f"{' and '.join(missing)} not set: the chosen back ends need them "
            "(on a cluster, put them in the Secret named by the api_secret parameter)"
        )
    if exports is not None:
        from .exports import check_exports

        check_exports(exports)
    ideas = load_ideas(local_csv(ideas_path))
    # The optional inputs later stages read: a typo there should fail now, not after training.
    if eval_ideas_path:
        load_ideas(local_csv(eval_ideas_path))
    if human_preferences_path:
        read_human_preferences(local_csv(human_preferences_path), human_preferences_path)
    if out_path:
        write_ideas(ideas, out_path, force=force)
    log.info("%s: %d ideas, all valid", ideas_path, len(ideas))
    return {"ideas": len(ideas)}


def check_counts(**counts) -> None:
    """The counts a stage takes, each with its least value: titles per idea (`n`, 2 to 100, to
    make pairs), samples per idea (`k`), batch sizes, processes, validation pairs (0 = skip)."""
    least = {"n": 2, "k": 1, "batch_size": 1, "num_processes": 1, "reward_pairs": 0}
    # Pairs grow with the square of the titles per idea: 100 titles are 4,950 pairs an idea.
    most = {"n": 100}
    for name, value in counts.items():
        check_number(name, value, low=least[name], high=most.get(name), integer=True)


def check_val_fraction(val_fraction: float) -> None:
    """The share of ideas held out: strictly between 0 and 1."""
    check_number("val_fraction", val_fraction, low=0, high=1, low_open=True, high_open=True)


def _policy(
    max_in_flight: int, requests_per_minute: float, timeout_s: float, max_retries: int | None
):
    from .api_calls import CallPolicy

    retries = {} if max_retries is None else {"max_retries": max_retries}
    return CallPolicy(
        max_in_flight=max_in_flight,
        requests_per_minute=requests_per_minute,
        timeout_s=timeout_s,
        **retries,
    )


def generate(
    ideas_path: str,
    out_path: str,
    provider: str,
    model: str | None,
    n: int,
    temperature: float = 0.9,
    top_p: float = 0.95,
    max_new_tokens: int = 40,
    seed: int = 42,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cache_dir: str | None = None,
    max_in_flight: int = 16,
    requests_per_minute: float = 0.0,
    timeout_s: float = 60.0,
    max_retries: int | None = None,
    shard_index: int = 0,
    shard_count: int = 1,
    force: bool = False,
) -> dict:
    """Write `n` candidate titles per idea to `out_path`; fail when not one title came back."""
    from .api_calls import summarise_causes
    from .generate import generate_candidates, write_candidates
    from .ideas import load_ideas
    from .label import failures_path, write_failures
    from .providers import SamplingConfig, make_generator
    from .shards import select_shard

    check_counts(n=n, batch_size=batch_size)
    sampling = SamplingConfig(temperature, top_p, max_new_tokens, seed)
    policy = _policy(max_in_flight, requests_per_minute, timeout_s, max_retries)
    check_output(out_path, inputs=[ideas_path, model], force=force, what="--out", folder=False)
    check_companion(failures_path(out_path), "failures file", inputs=[ideas_path, model])
    ideas = select_shard(
        [i.text for i in load_ideas(local_csv(ideas_path))], shard_index, shard_count
    )
    if shard_count > 1:
        log.info("shard %d of %d: %d ideas", shard_index + 1, shard_count, len(ideas))
    if temperature == 0 and provider == "hf":
        log.info("temperature 0: deterministic beam search, the %d best beams per idea", n)
    generator = make_generator(
        provider,
        local_input(model) if provider == "hf" else model,
        batch_size=batch_size,
        cache_dir=cache_dir,
        policy=policy,
    )
    rows, stats = generate_candidates(ideas, generator, n, sampling)
    failures = getattr(generator, "failures", [])
    write_failures(failures, out_path)
    if not rows:
        causes = (
            summarise_causes(failures)
            if failures
            else f"every answer was empty once cleaned ({stats['empty_answers']})"
        )
        where = f"; see {failures_path(out_path)}" if failures else ""
        raise NothingMade(f"no candidate titles for {len(ideas)} ideas: {causes}{where}")
    write_candidates(rows, out_path, force=force)
    if failures:
        log.warning("%d ideas came back short; see %s", len(failures), failures_path(out_path))
    stats["failures"] = len(failures)
    api = getattr(generator, "stats", None)
    if api is not None:
        stats.update({f"api_{k}": v for k, v in api.as_dict().items()})
    log.info("wrote %d candidates to %s", len(rows), out_path)
    return stats


def label(
    candidates_path: str,
    out_path: str,
    judge: str,
    mode: str = "listwise",
    model: str | None = None,
    cache_dir: str | None = None,
    max_in_flight: int = 16,
    requests_per_minute: float = 0.0,
    timeout_s: float = 60.0,
    max_retries: int | None = None,
    force: bool = False,
) -> dict:
    """Label every pair of an idea's titles; fail when not one preference survived."""
    from .api_calls import summarise_causes
    from .label import MODES, failures_path, label_pairs, write_failures, write_preferences
    from .providers import make_judge

    if mode not in MODES:
        raise UserError(f"unknown judge mode {mode!r}: choose {' or '.join(MODES)}")
    policy = _policy(max_in_flight, requests_per_minute, timeout_s, max_retries)
    check_output(out_path, inputs=[candidates_path], force=force, what="--out", folder=False)
    check_companion(failures_path(out_path), "failures file", inputs=[candidates_path])
    candidates = read_csv(local_csv(candidates_path), ["idea", "title"], "candidates")
    judge_impl = make_judge(judge, model, cache_dir=cache_dir, policy=policy)
    preferences, stats = label_pairs(candidates, judge_impl, mode)
    failures = getattr(judge_impl, "failures", [])
    write_failures(failures, out_path)
    if not preferences:
        raise NothingMade(_why_no_preferences(stats, failures, summarise_causes(failures)))
    write_preferences(preferences, out_path, force=force)
    log.info("wrote %d preference pairs to %s", len(preferences), out_path)
    return stats


def _why_no_preferences(stats: dict, failures: list[dict], causes: str) -> str:
    if not stats["pairs"]:
        return "no preference pairs: no idea has two different titles to compare"
    parts = []
    if stats["failures"]:
        parts.append(f"{stats['failures']} failed ({causes}; see the failures file)")
    if stats["position_flips"]:
        parts.append(
            f"{stats['position_flips']} position flips (the judge preferred a position, not a "
            "title, when the order was swapped)"
        )
    if stats["ties"]:
        parts.append(f"{stats['ties']} ties")
    return f"no preference pairs: of {stats['pairs']} pairs, " + ", ".join(parts)


def prepare(
    preferences_path: str,
    out_dir: str,
    val_fraction: float = 0.2,
    seed: int = 42,
    human_preferences_path: str | None = None,
    force: bool = False,
) -> dict:
    """Build the dataset from the judge's pairs, plus human-labelled pairs when given (a CSV
    with idea, chosen, rejected; local or gs://), which join the same split by idea."""
    from .dataset import build_dataset, check_preference_rows, read_human_preferences

    check_val_fraction(val_fraction)
    check_seed("seed", seed)
    check_output(
        out_dir,
        inputs=[preferences_path, human_preferences_path],
        force=force,
        what="--out",
        folder=True,
    )
    prefs = check_preference_rows(
        read_csv(local_csv(preferences_path), ["idea", "chosen", "rejected"], "preferences"),
        preferences_path,
    )
    human = []
    if human_preferences_path:
        human = read_human_preferences(local_csv(human_preferences_path), human_preferences_path)
        prefs = prefs + human
    stats = build_dataset(prefs, out_dir, val_fraction, seed, force=force)
    return {
        "human_pairs": len(human),
        "train_pairs": stats["train_pairs"],
        "validation_pairs": stats["validation_pairs"],
        "train_ideas": len(stats["train_ideas"]),
        "validation_ideas": len(stats["validation_ideas"]),
    }


def train(
    model: str,
    dataset_dir: str,
    out_dir: str,
    recipe: str,
    overrides: dict | None = None,
    checkpoint_dir: str | None = None,
    num_processes: int = 1,
    base_name: str | None = None,
    force: bool = False,
) -> dict:
    """Tune `model` with DPO. With `num_processes` > 1 (GPUs on one node), the same command runs
    under `accelerate launch`, one process per GPU, and this returns the figures it wrote."""
    from .recipes import load_recipe
    from .train import TRAIN_METRICS_FILE, train_dpo

    chosen = load_recipe(local_input(recipe), overrides)
    check_counts(num_processes=num_processes)
    if base_name is not None and (not base_name.strip() or not base_name.isprintable()):
        raise UserError("--base-name must be one line of printable text")
    check_output(
        out_dir,
        inputs=[model, dataset_dir],
        workdirs=[checkpoint_dir],
        force=force,
        what="--out",
        folder=True,
    )
    if checkpoint_dir:
        from .outputs import check_workdir
        from .train import CHECKPOINT_FILES, CHECKPOINTS

        check_workdir(
            checkpoint_dir,
            CHECKPOINTS,
            allowed=CHECKPOINT_FILES,
            inputs=[model, dataset_dir],
            what="--checkpoint-dir",
        )
    # Download a gs:// model once, here, before any worker process starts.
    local_model = local_input(model)
    if num_processes > 1 and "LOCAL_RANK" not in os.environ:
        from .launch import run_distributed

        run_distributed(
            num_processes,
            local_model,
            dataset_dir,
            out_dir,
            recipe,
            overrides or {},
            checkpoint_dir,
            base_name or model,
            force,
        )
        return read_json(Path(out_dir) / TRAIN_METRICS_FILE, "training figures", dict)
    log.info("recipe %s: %s", chosen.name, json.dumps(chosen.as_dict()))
    return train_dpo(
        local_model,
        dataset_dir,
        out_dir,
        chosen,
        checkpoint_dir=checkpoint_dir,
        base_name=base_name or model,
        force=force,
    )


def evaluation_ideas(split: dict, extra_ideas_path: str | None) -> tuple[list[str], str]:
    """The held-out ideas: the split's validation ideas plus an optional ideas file, never an
    idea that was trained on. Returns the ideas and a description of where they came from."""
    ideas = list(split["validation_ideas"])
    source = f"{len(ideas)} validation ideas of the split"
    if extra_ideas_path:
        from .ideas import load_ideas

        trained = set(split.get("train_ideas", []))
        extra = [i.text for i in load_ideas(local_csv(extra_ideas_path))]
        overlap = [i for i in extra if i in trained]
        if overlap:
            log.warning(
                "%d ideas of %s were trained on and are left out of the evaluation",
                len(overlap),
                extra_ideas_path,
            )
        seen = set(ideas)
        added = [i for i in extra if i not in trained and not (i in seen or seen.add(i))]
        ideas += added
        source += f" + {len(added)} from {Path(extra_ideas_path).name}"
    return ideas, source


def evaluate(
    base_model: str,
    tuned_model: str,
    dataset_dir: str,
    out_dir: str,
    judge: str = "rubric",
    k: int = 4,
    temperature: float = 0.9,
    top_p: float = 0.95,
    max_new_tokens: int = 40,
    seed: int = 1234,
    judge_model: str | None = None,
    eval_ideas_path: str | None = None,
    cache_dir: str | None = None,
    max_in_flight: int = 16,
    requests_per_minute: float = 0.0,
    timeout_s: float = 60.0,
    max_retries: int | None = None,
    reward_pairs: int = 512,
    force: bool = False,
) -> dict:
    """Compare base and tuned on held-out ideas; write `comparisons.csv` and `metrics.json`
    (evaluation figures, the implicit reward accuracy on validation pairs, and the tuned model's
    final training figures) into `out_dir`. Fails when every comparison failed."""
    from .api_calls import summarise_causes
    from .dataset import load_dataset_dict, load_split
    from .evaluate import evaluate_models, write_comparisons
    from .implicit_reward import implicit_reward_accuracy
    from .label import write_failures
    from .outputs import atomic_dir
    from .providers import SamplingConfig, make_judge
    from .train import RECIPE_FILE, TRAIN_METRICS_FILE

    check_counts(k=k, reward_pairs=reward_pairs)
    sampling = SamplingConfig(temperature, top_p, max_new_tokens, seed)
    policy = _policy(max_in_flight, requests_per_minute, timeout_s, max_retries)
    check_output(
        out_dir,
        inputs=[base_model, tuned_model, dataset_dir, eval_ideas_path],
        force=force,
        what="--out",
        folder=True,
    )
    split = load_split(dataset_dir)
    # Read now: a damaged dataset should fail before any title is sampled.
    validation = load_dataset_dict(dataset_dir)["validation"]
    ideas, source = evaluation_ideas(split, eval_ideas_path)
    if not ideas:
        raise UserError(f"{dataset_dir} holds no validation ideas and no evaluation ideas file")
    base_model = local_input(base_model)
    tuned_model = local_input(tuned_model)
    judge_impl = make_judge(judge, judge_model, cache_dir=cache_dir, policy=policy)
    warnings = []
    label_judges = split.get("judges", [])
    if judge_impl.name in label_judges or judge in label_judges:
        warnings.append(
            f"the evaluation judge's back end ({judge_impl.name}) also labelled the training "
            "pairs: the tuned model was trained to please this judge, so the win rate "
            "overstates what a different reader would see; choose another eval_judge for an "
            "independent verdict"
        )
    if temperature == 0:
        log.info("temperature 0: deterministic beam search, the %d best beams per idea", k)
    rows, metrics = evaluate_models(base_model, tuned_model, ideas, judge_impl, k, sampling)
    failures = getattr(judge_impl, "failures", [])
    if not metrics["n_comparisons"]:
        raise NothingMade(
            f"every one of {len(rows)} comparisons failed: {summarise_causes(failures)}"
        )
    metrics["eval_ideas_source"] = source
    metrics["label_judge"] = ", ".join(label_judges)

    recipe_path = Path(tuned_model) / RECIPE_FILE
    trained_with = read_json(recipe_path, "recipe", dict) if recipe_path.is_file() else {}
    if reward_pairs > 0 and len(validation):
        # A seeded sample across ideas: the rows are grouped by idea.
        pairs = validation.shuffle(seed=seed).select(range(min(reward_pairs, len(validation))))
        metrics.update(
            implicit_reward_accuracy(
                base_model,
                tuned_model,
                list(pairs),
                beta=trained_with.get("beta", 0.1),
                max_length=trained_with.get("max_length"),
            )
        )
    train_metrics = Path(tuned_model) / TRAIN_METRICS_FILE
    if train_metrics.is_file():
        metrics.update(read_json(train_metrics, "training figures", dict))
    metrics["warnings"] = warnings
    for warning in warnings:
        log.warning("%s", warning)
    with atomic_dir(out_dir, force=force, kind="evaluation", what="--out") as tmp:
        write_comparisons(rows, tmp / COMPARISONS_FILE)
        write_failures(failures, tmp / COMPARISONS_FILE)
        write_json(tmp / METRICS_FILE, metrics)
    return metrics


def run_config(
    metrics: dict, model_dir: str, candidates_path: str | None, dataset_dir: str | None
) -> dict:
    """What the run actually used, read back from its artifacts rather than echoed from
    parameters: generator settings, split, recipe, evaluation settings."""
    from .train import RECIPE_FILE

    config: dict = {}
    if candidates_path and Path(candidates_path).is_file():
        rows = read_csv(candidates_path, ["idea", "title"], "candidates")
        if rows:
            first = rows[0]
            for key in ("provider", "model", "temperature", "top_p", "max_new_tokens", "seed"):
                if key in first:
                    config[f"generator_{key}"] = first[key]
            config["candidates"] = len(rows)
    if dataset_dir and (Path(dataset_dir) / "split.json").is_file():
        from .dataset import load_split

        split = load_split(dataset_dir)
        config["split_seed"] = split.get("seed")
        config["val_fraction"] = split.get("val_fraction")
        config["train_ideas"] = len(split.get("train_ideas", []))
        config["validation_ideas"] = len(split.get("validation_ideas", []))
    recipe_path = Path(model_dir) / RECIPE_FILE
    if recipe_path.is_file():
        recipe = read_json(recipe_path, "recipe", dict)
        config["base_model"] = recipe.pop("base_model", None)
        config["recipe"] = recipe
    for key in (
        "eval_judge",
        "label_judge",
        "eval_ideas_source",
        "samples_per_idea",
        "eval_temperature",
        "eval_top_p",
        "eval_seed",
    ):
        if key in metrics:
            config[key] = metrics[key]
    return config


def report(
    eval_dir: str,
    model_dir: str,
    out_path: str,
    config: dict | None = None,
    candidates_path: str | None = None,
    dataset_dir: str | None = None,
    force: bool = False,
) -> dict:
    """Write the HTML report of a run from its evaluation folder and tuned model."""
    from .report import write_report
    from .train import HISTORY_FILE

    began = time.perf_counter()
    check_output(
        out_path,
        inputs=[eval_dir, model_dir, candidates_path, dataset_dir],
        force=force,
        what="--out",
        folder=False,
    )
    eval_dir = local_input(eval_dir)
    model_dir = local_input(model_dir)
    metrics = read_json(Path(eval_dir) / METRICS_FILE, "evaluation metrics", dict)
    comparisons = read_csv(
        Path(eval_dir) / COMPARISONS_FILE, ["idea", "base_title", "tuned_title"], "comparisons"
    )
    for number, row in enumerate(comparisons, start=2):
        try:
            row["sample"] = int(row.get("sample") or 0)
        except ValueError:
            raise UserError(
                f"{Path(eval_dir) / COMPARISONS_FILE} row {number}: sample is not a number"
            ) from None
    history_path = Path(model_dir) / HISTORY_FILE
    history = read_json(history_path, "training history", list) if history_path.is_file() else []
    if not history:
        missing = f"{model_dir} has no {HISTORY_FILE}: the training curves are left out"
        log.warning("%s", missing)
        metrics["warnings"] = [*metrics.get("warnings", []), missing]
    full_config = run_config(metrics, model_dir, candidates_path, dataset_dir)
    full_config.update(config or {})
    write_report(
        out_path,
        metrics=metrics,
        log_history=history,
        comparisons=comparisons,
        config=full_config,
        force=force,
    )
    log.info("report written to %s in %.1fs", out_path, time.perf_counter() - began)
    return {"comparisons": len(comparisons)}


def export(dataset_dir: str | None, model_dir: str | None, exports) -> dict:
    """Optional exports of the dataset and the model (Cloud Storage, Hugging Face Hub)."""
    from .exports import export as run_exports

    return run_exports(dataset_dir, model_dir, exports)
