"""DPO training step on the CPU: time per step and peak memory of three ways to hold the reference.

A random-weight Qwen2 of a few tens of millions of parameters (saved with a BPE tokenizer trained
here, ChatML template) is trained with TRL's DPOTrainer on synthetic conversational preference
pairs shaped like `dpo_titles.dataset` writes them, three ways, each in its own fresh process,
their steps run in turn (a1 b1 c1 a2 ...):

  (a) full_ref    full fine-tune; the reference is a second full copy of the model (TRL default)
  (b) lora        LoRA r=16 on all linear layers; the reference is the policy with the adapter off
  (c) precompute  full fine-tune with precompute_ref_log_probs=True: the reference log-probs of
                  the whole training set are computed once, by the policy before it is trained,
                  so no reference model is kept and no reference forward runs in a step

Step time is the median wall time of the optimizer steps after `--warmup` steps; peak memory is
the child's peak RSS above its RSS after the imports (see bench/README.md). The last line of the
output is space-separated key=value figures.

    .venv/bin/python bench/train_step.py   # defaults: ~3 minutes on 2 shared cores, 6 under load
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _dpo_common import (  # noqa: E402
    VARIANT_HELP,
    VARIANTS,
    build_model_folder,
    child_main,
    fmt_kv,
    run_lockstep,
    synthetic_rows,
    write_rows,
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=10, help="optimizer steps per variant")
    p.add_argument("--warmup", type=int, default=2, help="first steps left out of the timing")
    p.add_argument(
        "--batch-size",
        type=int,
        default=1,
        help="pairs per step (default 1: the original recipe's per-device batch; bench/README.md)",
    )
    p.add_argument(
        "--max-length", type=int, default=256, help="DPOConfig.max_length (256 in the original)"
    )
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--intermediate", type=int, default=1408)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--vocab", type=int, default=8192, help="the model's vocabulary size")
    p.add_argument(
        "--gradient-checkpointing",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="DPOConfig.gradient_checkpointing; TRL 1.16's default, and so train.py's (default on)",
    )
    p.add_argument("--learning-rate", type=float, default=1e-5)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads per child")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.steps <= args.warmup:
        p.error("--steps must be larger than --warmup")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        child_main(args.child)
        return 0
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        if v not in VARIANTS:
            sys.exit(f"train_step.py: unknown variant {v!r}; choose from {', '.join(VARIANTS)}")

    began = time.perf_counter()
    sizes = dict(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )
    with tempfile.TemporaryDirectory(prefix="dpo-bench-") as tmp:
        tmp = Path(tmp)
        rows = synthetic_rows(args.steps * args.batch_size, args.seed)
        write_rows(rows, tmp / "pairs.jsonl")
        info = build_model_folder(tmp / "model", sizes, rows, args.seed, "float32")
        print(
            f"model: Qwen2 {args.layers} layers, hidden {args.hidden}, intermediate "
            f"{args.intermediate}, vocab {args.vocab} (tokenizer {info['tokenizer_vocab']}), "
            f"{info['params'] / 1e6:.1f}M parameters, float32, random weights",
            file=sys.stderr,
        )
        all_opts = [
            dict(
                variant=v,
                device="cpu",
                dtype="float32",
                model=str(tmp / "model"),
                data=str(tmp / "pairs.jsonl"),
                workdir=str(tmp),
                steps=args.steps,
                warmup=args.warmup,
                batch_size=args.batch_size,
                max_length=args.max_length,
                gradient_checkpointing=args.gradient_checkpointing,
                learning_rate=args.learning_rate,
                threads=args.threads,
                seed=args.seed,
            )
            for v in variants
        ]
        for v in variants:
            print(f"{v}: {VARIANT_HELP[v]}", file=sys.stderr)
        results = run_lockstep(
            __file__, all_opts, tmp, say=lambda m: print(m, file=sys.stderr, flush=True)
        )
    wall = time.perf_counter() - began
    report(args, info, results, wall)
    return 0


def report(args, info, results, wall) -> None:
    r0 = next(iter(results.values()))
    print(
        f"DPO train step on CPU ({args.threads} threads), torch {r0['torch']}, TRL {r0['trl']}: "
        f"Qwen2 random weights, {info['params'] / 1e6:.1f}M parameters "
        f"({info['embedding_params'] / 1e6:.1f}M in the tied embedding), float32; "
        f"batch {args.batch_size} pairs, max_length {args.max_length}, AdamW, gradient "
        f"checkpointing {'on' if args.gradient_checkpointing else 'off'}; {args.steps} steps "
        f"each, run in turn, median of the last {args.steps - args.warmup}"
    )
    print(
        f"{'variant':<11} {'step s':>6} {'cpu s':>6} {'min s':>6} {'max s':>6} {'tok/st':>6}"
        f" {'trainable':>9} {'ref copy':>8} {'ckpt':>4} {'peak MB':>7} {'setup':>5} {'train':>5}"
        f" {'abs RSS':>7} {'setup s':>7}"
    )
    for v, r in results.items():
        timed = r["step_s_all"][args.warmup :]
        ckpt = "on" if r["gradient_checkpointing"] else "off"
        print(
            f"{v:<11} {r['step_s_median']:>6.3f} {r['step_cpu_s_median']:>6.3f}"
            f" {min(timed):>6.3f} {max(timed):>6.3f} {r['tokens_per_step']:>6.0f}"
            f" {r['trainable_params'] / 1e6:>8.2f}M {'yes' if r['ref_copy'] else 'no':>8}"
            f" {ckpt:>4} {r['peak_mb']:>7.0f} {r['setup_peak_mb']:>5.0f} {r['train_peak_mb']:>5.0f}"
            f" {r['peak_rss_abs_mb']:>7.0f} {r['setup_s']:>7.1f}"
        )
    print(
        "step s = median wall time of a step; cpu s = median CPU time (both threads) of a step. "
        "peak MB = max(setup, train): the variant's own process's peak RSS above its RSS after "
        f"the imports (about {r0['base_rss_mb']:.0f} MB in each); setup = model load, reference "
        "copy or precompute, trainer; train = the steps; abs RSS = the process's peak RSS."
    )
    figures: dict = {}
    a, b, c = (results.get(k) for k in ("full_ref", "lora", "precompute"))
    if a and b:
        figures["lora_peak_mem_ratio"] = b["peak_mb"] / a["peak_mb"]
    if a and c:
        figures["precompute_step_time_ratio"] = c["step_s_median"] / a["step_s_median"]
        figures["precompute_cpu_time_ratio"] = c["step_cpu_s_median"] / a["step_cpu_s_median"]
        figures["precompute_peak_mem_ratio"] = c["peak_mb"] / a["peak_mb"]
    if a and b:
        figures["lora_step_time_ratio"] = b["step_s_median"] / a["step_s_median"]
        figures["lora_peak_rss_abs_ratio"] = b["peak_rss_abs_mb"] / a["peak_rss_abs_mb"]
    for v, r in results.items():
        figures[f"{v}_step_s"] = r["step_s_median"]
        figures[f"{v}_step_cpu_s"] = r["step_cpu_s_median"]
        figures[f"{v}_peak_mb"] = r["peak_mb"]
        figures[f"{v}_setup_peak_mb"] = r["setup_peak_mb"]
        figures[f"{v}_train_peak_mb"] = r["train_peak_mb"]
        figures[f"{v}_peak_rss_abs_mb"] = r["peak_rss_abs_mb"]
        figures[f"{v}_setup_s"] = r["setup_s"]
    figures.update(
        base_rss_mb=r0["base_rss_mb"],
        params=info["params"],
        tokens_per_step=r0["tokens_per_step"],
        batch_size=args.batch_size,
        max_length=args.max_length,
        steps=args.steps,
        warmup=args.warmup,
        gradient_checkpointing=int(args.gradient_checkpointing),
        threads=args.threads,
        wall_s=wall,
    )
    checks = []
    if "lora_peak_mem_ratio" in figures:
        x = figures["lora_peak_mem_ratio"]
        checks.append(f"lora_peak_mem_ratio {x:.3f} ({'meets' if x <= 0.6 else 'misses'} <= 0.6)")
    if "precompute_step_time_ratio" in figures:
        x = figures["precompute_step_time_ratio"]
        checks.append(
            f"precompute_step_time_ratio {x:.3f} ({'meets' if x <= 0.85 else 'misses'} <= 0.85)"
        )
    if checks:
        print("; ".join(checks))
    print("step times (s): " + json.dumps({v: r["step_s_all"] for v, r in results.items()}))
    print(f"total wall time {wall:.0f}s")
    print()
    print(fmt_kv(figures))


if __name__ == "__main__":
    sys.exit(main())
