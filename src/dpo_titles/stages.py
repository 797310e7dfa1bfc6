"""One function per pipeline stage, on files and plain values: each adapts its files and
settings to the library's calls, and nothing more (the logic lives in the module its concern
names). The command line (`cli.py`) and the KFP components (`components/`) both call these, so
a stage does the same thing wherever it runs. Each returns a flat dict of figures for logs and
Metrics.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from .api_calls import CallPolicy
from .errors import NothingMade, UserError
from .files import read_csv, read_json, write_json
from .outputs import check_companion, check_output
from .settings import (
    Agreement,
    Evaluation,
    Generation,
    Labelling,
    Sampling,
    Split,
    check_number,
)
from .storage import local_csv, local_input

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
COMPARISONS_FILE = "comparisons.csv"


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


def generate(
    ideas_path: str,
    out_path: str,
    generation: Generation,
    sampling: Sampling,
    *,
    policy: CallPolicy | None = None,
    cache_dir: str | None = None,
    shard_index: int = 0,
    shard_count: int = 1,
    force: bool = False,
) -> dict:
    """Write `generation.titles_per_idea` candidate titles per idea to `out_path`; fail when
    not one title came back."""
    from .api_calls import summarise_causes
    from .generate import generate_candidates, write_candidates
    from .ideas import load_ideas
    from .label import failures_path, write_failures
    from .providers import SamplingConfig, make_generator
    from .shards import select_shard

    model = generation.model or None
    check_output(out_path, inputs=[ideas_path, model], force=force, what="--out", folder=False)
    check_companion(failures_path(out_path), "failures file", inputs=[ideas_path, model])
    ideas = select_shard(
        [i.text for i in load_ideas(local_csv(ideas_path))], shard_index, shard_count
    )
    if shard_count > 1:
        log.info("shard %d of %d: %d ideas", shard_index + 1, shard_count, len(ideas))
    n = generation.titles_per_idea
    if sampling.temperature == 0 and generation.provider == "hf":
        log.info("temperature 0: deterministic beam search, the %d best beams per idea", n)
    generator = make_generator(
        generation.provider,
        local_input(model) if generation.provider == "hf" else model,
        batch_size=generation.batch_size,
        cache_dir=cache_dir,
        policy=policy or CallPolicy(),
    )
    rows, stats = generate_candidates(
        ideas, generator, n, SamplingConfig.of(sampling, generation.seed)
    )
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
    labelling: Labelling,
    *,
    policy: CallPolicy | None = None,
    cache_dir: str | None = None,
    force: bool = False,
) -> dict:
    """Label every pair of an idea's titles; fail when not one preference survived."""
    from .api_calls import summarise_causes
    from .label import (
        failures_path,
        label_pairs,
        why_no_preferences,
        write_failures,
        write_preferences,
    )
    from .providers import make_judge

    check_output(out_path, inputs=[candidates_path], force=force, what="--out", folder=False)
    check_companion(failures_path(out_path), "failures file", inputs=[candidates_path])
    candidates = read_csv(local_csv(candidates_path), ["idea", "title"], "candidates")
    judge = make_judge(
        labelling.judge, labelling.model, cache_dir=cache_dir, policy=policy or CallPolicy()
    )
    preferences, stats = label_pairs(candidates, judge, labelling.mode)
    failures = getattr(judge, "failures", [])
    write_failures(failures, out_path)
    if not preferences:
        raise NothingMade(why_no_preferences(stats, summarise_causes(failures)))
    write_preferences(preferences, out_path, force=force)
    log.info("wrote %d preference pairs to %s", len(preferences), out_path)
    return stats


def agreement(
    human_path: str,
    out_path: str | None,
    labelling: Labelling,
    settings: Agreement,
    *,
    policy: CallPolicy | None = None,
    cache_dir: str | None = None,
    force: bool = False,
) -> dict:
    """Have the judge label the human-labelled pairs and measure how far it agrees with the
    people (agreement, Cohen's kappa, flips); written to `out_path` (JSON) when given."""
    from .agreement import measure_agreement
    from .dataset import check_preference_rows
    from .providers import make_judge

    if not human_path:
        # The pipeline without human pairs: nothing to measure, and the report says so.
        result = {"pairs": 0, "pairs_compared": 0}
        if out_path:
            write_json(out_path, result, force=force)
        return result
    if out_path:
        check_output(out_path, inputs=[human_path], force=force, what="--out", folder=False)
    rows = read_csv(local_csv(human_path), ["idea", "chosen", "rejected"], "human preferences")
    check_preference_rows(rows, human_path)
    if not rows:
        raise UserError(f"{human_path} holds no labelled pairs: label some with `annotate`")
    judge = make_judge(
        labelling.judge, labelling.model, cache_dir=cache_dir, policy=policy or CallPolicy()
    )
    result = measure_agreement(rows, judge, labelling.mode, settings.seed)
    if out_path:
        write_json(out_path, result, force=force)
    return result


def prepare(
    preferences_path: str,
    out_dir: str,
    split: Split,
    *,
    human_preferences_path: str | None = None,
    force: bool = False,
) -> dict:
    """Build the dataset from the judge's pairs, plus human-labelled pairs when given (a CSV
    with idea, chosen, rejected; local or gs://), which join the same split by idea."""
    from .dataset import build_dataset, check_preference_rows, read_human_preferences

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
    stats = build_dataset(
        prefs, out_dir, split.val_fraction, split.seed, pairs=split.pairs, force=force
    )
    return {
        "human_pairs": len(human),
        "labelled_pairs": stats["labelled_pairs"],
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
    progress: bool = True,
) -> dict:
    """Tune `model` with DPO. With `num_processes` > 1 (GPUs on one node), the same command runs
    under `torchrun`, one process per GPU, and this returns the figures it wrote."""
    from .recipes import load_recipe
    from .train import TRAIN_METRICS_FILE, fit_dpo

    chosen = load_recipe(local_input(recipe), overrides)
    check_number("num_processes", num_processes, low=1, integer=True)
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
    return fit_dpo(
        local_model,
        dataset_dir,
        out_dir,
        chosen,
        checkpoint_dir=checkpoint_dir,
        base_name=base_name or model,
        force=force,
        progress=progress,
    )


def evaluate(
    base_model: str,
    tuned_model: str,
    dataset_dir: str,
    out_dir: str,
    evaluation: Evaluation,
    sampling: Sampling,
    *,
    eval_ideas_path: str | None = None,
    policy: CallPolicy | None = None,
    cache_dir: str | None = None,
    force: bool = False,
) -> dict:
    """Compare base and tuned on held-out ideas; write `comparisons.csv` and `metrics.json`
    (evaluation figures, the implicit reward accuracy on validation pairs, and the tuned model's
    final training figures) into `out_dir`. Fails when every comparison failed."""
    from .api_calls import summarise_causes
    from .dataset import load_dataset_dict, load_split
    from .evaluate import (
        base_model_note,
        compare_models,
        held_out_ideas,
        same_judge_warning,
        write_comparisons,
    )
    from .ideas import load_ideas
    from .implicit_reward import implicit_reward_accuracy, sample_pairs
    from .label import write_failures
    from .outputs import atomic_dir
    from .providers import SamplingConfig, make_judge
    from .train import RECIPE_FILE, TRAIN_METRICS_FILE

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
    extra = [i.text for i in load_ideas(local_csv(eval_ideas_path))] if eval_ideas_path else []
    name = Path(eval_ideas_path).name if eval_ideas_path else ""
    ideas, source = held_out_ideas(split, extra, name)
    if not ideas:
        raise UserError(f"{dataset_dir} holds no validation ideas and no evaluation ideas file")
    base_model = local_input(base_model)
    tuned_model = local_input(tuned_model)
    judge = make_judge(
        evaluation.judge,
        evaluation.judge_model,
        cache_dir=cache_dir,
        policy=policy or CallPolicy(),
    )
    label_judges = split.get("judges", [])
    warnings = [w for w in (same_judge_warning(judge.name, label_judges),) if w]
    k = evaluation.samples_per_idea
    if sampling.temperature == 0:
        log.info("temperature 0: deterministic beam search, the %d best beams per idea", k)
    rows, metrics = compare_models(
        base_model, tuned_model, ideas, judge, k, SamplingConfig.of(sampling, evaluation.seed)
    )
    failures = getattr(judge, "failures", [])
    if not metrics["n_comparisons"]:
        raise NothingMade(
            f"every one of {len(rows)} comparisons failed: {summarise_causes(failures)}"
        )
    metrics["eval_ideas_source"] = source
    metrics["label_judge"] = ", ".join(label_judges)
    metrics["base_model_note"] = base_model_note(base_model)

    recipe_path = Path(tuned_model) / RECIPE_FILE
    trained_with = read_json(recipe_path, "recipe", dict) if recipe_path.is_file() else {}
    pairs = sample_pairs(validation, evaluation.reward_pairs, evaluation.seed)
    if pairs:
        metrics.update(
            implicit_reward_accuracy(
                base_model,
                tuned_model,
                pairs,
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


def report(
    eval_dir: str,
    model_dir: str,
    out_path: str,
    config: dict | None = None,
    candidates_path: str | None = None,
    dataset_dir: str | None = None,
    agreement_path: str | None = None,
    human_eval_path: str | None = None,
    force: bool = False,
) -> dict:
    """Write the HTML report of a run from its evaluation folder and tuned model; with the
    judge's agreement with people (from `agreement`) and blind human verdicts on the
    comparisons (from `annotate --comparisons`) when given."""
    from .evaluate import read_comparisons
    from .report import run_configuration, save_report
    from .train import HISTORY_FILE

    began = time.perf_counter()
    check_output(
        out_path,
        inputs=[eval_dir, model_dir, candidates_path, dataset_dir, agreement_path, human_eval_path],
        force=force,
        what="--out",
        folder=False,
    )
    eval_dir = local_input(eval_dir)
    model_dir = local_input(model_dir)
    metrics = read_json(Path(eval_dir) / METRICS_FILE, "evaluation metrics", dict)
    comparisons = read_comparisons(Path(eval_dir) / COMPARISONS_FILE)
    history_path = Path(model_dir) / HISTORY_FILE
    history = read_json(history_path, "training history", list) if history_path.is_file() else []
    if not history:
        missing = f"{model_dir} has no {HISTORY_FILE}: the training curves are left out"
        log.warning("%s", missing)
        metrics["warnings"] = [*metrics.get("warnings", []), missing]
    full_config = run_configuration(metrics, model_dir, candidates_path, dataset_dir)
    full_config.update(config or {})
    agreement = None
    if agreement_path:
        agreement = read_json(local_input(agreement_path), "judge agreement", dict)
    human_eval = None
    if human_eval_path:
        from .agreement import human_evaluation

        human = read_csv(
            local_csv(human_eval_path),
            ["idea", "base_title", "tuned_title", "verdict"],
            "human evaluation",
        )
        human_eval = human_evaluation(comparisons, human)
        if not human_eval["human_comparisons"]:
            raise UserError(
                f"{human_eval_path} holds no verdicts (tuned, base or tie): label the "
                "comparisons with `dpo-titles annotate --comparisons`"
            )
    save_report(
        out_path,
        metrics=metrics,
        log_history=history,
        comparisons=comparisons,
        config=full_config,
        agreement=agreement,
        human_eval=human_eval,
        force=force,
    )
    log.info("report written to %s in %.1fs", out_path, time.perf_counter() - began)
    return {"comparisons": len(comparisons), **(human_eval or {})}


def export(dataset_dir: str | None, model_dir: str | None, exports) -> dict:
    """Optional exports of the dataset and the model (Cloud Storage, Hugging Face Hub)."""
    from .exports import export as run_exports

    return run_exports(dataset_dir, model_dir, exports)
