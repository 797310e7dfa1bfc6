"""DPO training throughput on one GPU: a Qwen2.5-0.5B-shaped model with random weights.

The model has Qwen/Qwen2.5-0.5B's published sizes (hidden 896, 24 layers, 14 query and 2 key/value
heads, intermediate 4864, vocabulary 151936, tied embedding, rope_theta 1e6: 494M parameters), so
every matmul has its real shape, but random weights and a small BPE tokenizer trained here: no hub
is reached. Synthetic conversational preference pairs shaped like `dpo_titles.dataset` writes
them. The same three variants as bench/train_step.py, each in its own fresh process, in bf16:

  (a) full_ref    full fine-tune; the reference is a second full copy of the model (TRL default)
  (b) lora        LoRA r=16 on all linear layers; the reference is the policy with the adapter off
  (c) precompute  full fine-tune with precompute_ref_log_probs=True: the reference log-probs are
                  computed once before training, so a step has no reference forward

For each: median step time after `--warmup` steps, tokens/s and samples (pairs)/s, peak GPU memory
(torch.cuda.max_memory_allocated) and MFU against the GPU's bf16 dense peak. The last line of the
output is space-separated key=value figures, including the device name.

    .venv/bin/python bench/gpu_train.py                     # a CUDA GPU; est. 3 min on an H100
    .venv/bin/python bench/gpu_train.py --allow-cpu --tiny  # CPU smoke run of the script itself
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _dpo_common import (  # noqa: E402
    QWEN25_05B,
    VARIANT_HELP,
    VARIANTS,
    build_model_folder,
    child_main,
    fmt_kv,
    run_lockstep,
    synthetic_rows,
    write_rows,
)

# bf16 dense (no sparsity) tensor-core peaks from the vendor's data sheets, FLOP/s. The first
# entry whose key is in the lower-cased device name wins, so the more specific names come first.
PEAK_BF16 = (
    ("h100 pcie", 756e12),
    ("h100 nvl", 835e12),
    ("h200", 989e12),  # also GH200
    ("h100", 989e12),  # SXM (the device name says "HBM3")
    ("h800", 989e12),
    ("a100", 312e12),
    ("l40s", 362e12),
    ("l4", 121e12),
    ("a10", 125e12),
)

TINY = dict(
    vocab_size=2048,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
    tie_word_embeddings=True,
)

# Model FLOPs per token, in multiples of 2 x parameters (one forward): a trained forward and
# backward is 3 (forward 1, gradients of activations 1, of weights 1); LoRA trains no base weight,
# so its backward skips the weight gradients (2; the r=16 adapter's own FLOPs are under 2% and
# left out); a reference forward adds 1.
FORWARDS = {"full_ref": 3 + 1, "lora": 2 + 1, "precompute": 3}


def peak_flops_for(name: str) -> float | None:
    low = name.lower()
    for key, flops in PEAK_BF16:
        if key in low:
            return flops
    return None


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, help="optimizer steps per variant (30; --tiny: 3)")
    p.add_argument("--warmup", type=int, help="first steps left out of the timing (5; --tiny: 1)")
    p.add_argument("--batch-size", type=int, help="pairs per step (8; --tiny: 2)")
    p.add_argument(
        "--max-length", type=int, default=256, help="DPOConfig.max_length (256 in the original)"
    )
    p.add_argument(
        "--gradient-checkpointing",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="DPOConfig.gradient_checkpointing; TRL 1.16's default, and so train.py's (default on)",
    )
    p.add_argument("--peak-flops", type=float, help="the GPU's bf16 dense peak, FLOP/s, for MFU")
    p.add_argument("--learning-rate", type=float, default=1e-6, help="the original recipe's 1e-6")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset")
    p.add_argument("--tiny", action="store_true", help="a 0.3M-parameter model instead")
    p.add_argument("--allow-cpu", action="store_true", help="with --tiny: run on the CPU")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.steps is None:
        args.steps = 3 if args.tiny else 30
    if args.warmup is None:
        args.warmup = 1 if args.tiny else 5
    if args.batch_size is None:
        args.batch_size = 2 if args.tiny else 8
    if args.steps <= args.warmup:
        p.error("--steps must be larger than --warmup")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        child_main(args.child)
        return 0
    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not (args.allow_cpu and args.tiny):
        print(
            "gpu_train.py: no CUDA device found; this benchmark needs a GPU "
            "(for a CPU smoke run of the script itself: --allow-cpu --tiny)",
            file=sys.stderr,
        )
        return 2
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        if v not in VARIANTS:
            print(f"gpu_train.py: unknown variant {v!r}; choose from {VARIANTS}", file=sys.stderr)
            return 2
    dtype = "bfloat16" if cuda and torch.cuda.is_bf16_supported() else "float32"
    sizes = TINY if args.tiny else QWEN25_05B

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dpo-gpu-bench-") as tmp:
        tmp = Path(tmp)
        rows = synthetic_rows(args.steps * args.batch_size, args.seed)
        write_rows(rows, tmp / "pairs.jsonl")
        info = build_model_folder(tmp / "model", sizes, rows, args.seed, dtype)
        print(
            f"model: {'tiny' if args.tiny else 'Qwen2.5-0.5B-shaped'} Qwen2, "
            f"{info['params'] / 1e6:.1f}M parameters, {dtype}, random weights; "
            f"built in {time.perf_counter() - began:.0f}s",
            file=sys.stderr,
        )
        all_opts = [
            dict(
                variant=v,
                device="cuda" if cuda else "cpu",
                dtype=dtype,
                model=str(tmp / "model"),
                data=str(tmp / "pairs.jsonl"),
                workdir=str(tmp),
                steps=args.steps,
                warmup=args.warmup,
                batch_size=args.batch_size,
                max_length=args.max_length,
                gradient_checkpointing=args.gradient_checkpointing,
                learning_rate=args.learning_rate,
                threads=2,
                seed=args.seed,
            )
            for v in variants
        ]
        for v in variants:
            print(f"{v}: {VARIANT_HELP[v]}", file=sys.stderr)
        results = run_lockstep(
            __file__, all_opts, tmp, say=lambda m: print(m, file=sys.stderr, flush=True)
        )
    report(args, info, dtype, results, time.perf_counter() - began)
    return 0


def report(args, info, dtype, results, wall) -> None:
    r0 = next(iter(results.values()))
    device = r0["device_name"]
    peak = args.peak_flops or peak_flops_for(device)
    n = info["params"]
    cuda = "peak_cuda_mb" in r0
    print(
        f"DPO training on {device}, torch {r0['torch']}, TRL {r0['trl']}: "
        f"{'tiny' if args.tiny else 'Qwen2.5-0.5B-shaped'} Qwen2, random weights, "
        f"{n / 1e6:.1f}M parameters, {dtype}; batch {args.batch_size} pairs, max_length "
        f"{args.max_length}, AdamW, gradient checkpointing "
        f"{'on' if args.gradient_checkpointing else 'off'}; {args.steps} steps, median of the "
        f"last {args.steps - args.warmup}; "
        + (
            f"peak {peak / 1e12:.0f} TFLOP/s bf16 dense"
            + (" (--peak-flops)" if args.peak_flops else " (table)")
            if peak
            else "no known peak FLOP/s for this device (--peak-flops), so no MFU"
        )
    )
    mem = "peak GB" if cuda else "peak RSS MB"
    print(
        f"{'variant':<12} {'step s':>7} {'tokens/s':>9} {'pairs/s':>8} {'tok/step':>8}"
        f" {'TFLOP/s':>8} {'MFU':>6} {mem:>11} {'reserved':>8} {'trainable':>10} {'ref copy':>8}"
    )
    figures: dict = {"device": device.replace(" ", "_")}
    for v, r in results.items():
        step = r["step_s_median"]
        tok = r["tokens_per_step"]
        flops = 2 * n * FORWARDS[v] * tok / step
        mfu = flops / peak if peak else float("nan")
        r.update(tokens_per_s=tok / step, samples_per_s=args.batch_size / step, mfu=mfu)
        r["tflops"] = flops / 1e12
        mfu_s = f"{mfu:.1%}" if peak else "-"
        if cuda:
            r["mem"] = r["peak_cuda_mb"] / 1024
            reserved = f"{r['peak_cuda_reserved_mb'] / 1024:>8.2f}"
        else:
            r["mem"] = r["peak_mb"]
            reserved = f"{'-':>8}"
        print(
            f"{v:<12} {step:>7.3f} {r['tokens_per_s']:>9.0f} {r['samples_per_s']:>8.2f}"
            f" {tok:>8.0f} {r['tflops']:>8.3g} {mfu_s:>6} {r['mem']:>11.2f} {reserved}"
            f" {r['trainable_params'] / 1e6:>9.1f}M {'yes' if r['ref_copy'] else 'no':>8}"
        )
    print(
        "tokens = real (not padding) tokens of the chosen and rejected sequences a step trains on; "
        "model FLOPs per token = 2 x params x (3 for a trained forward+backward, 2 for LoRA's "
        "frozen base, +1 for a reference forward); gradient-checkpointing recompute not counted"
    )
    a, b, c = (results.get(k) for k in ("full_ref", "lora", "precompute"))
    if a and b:
        figures["lora_peak_mem_ratio"] = b["mem"] / a["mem"]
        figures["lora_step_time_ratio"] = b["step_s_median"] / a["step_s_median"]
    if a and c:
        figures["precompute_step_time_ratio"] = c["step_s_median"] / a["step_s_median"]
        figures["precompute_peak_mem_ratio"] = c["mem"] / a["mem"]
    for v, r in results.items():
        figures[f"{v}_step_s"] = r["step_s_median"]
        figures[f"{v}_tokens_per_s"] = r["tokens_per_s"]
        figures[f"{v}_samples_per_s"] = r["samples_per_s"]
        figures[f"{v}_mfu"] = r["mfu"]
        figures[f"{v}_peak_mem_{'gb' if cuda else 'mb'}"] = r["mem"]
        if cuda:
            figures[f"{v}_train_peak_mem_gb"] = r["train_peak_cuda_mb"] / 1024
            figures[f"{v}_reserved_gb"] = r["peak_cuda_reserved_mb"] / 1024
    figures.update(
        peak_flops=peak if peak else float("nan"),
        params=n,
        dtype=dtype,
        tokens_per_step=r0["tokens_per_step"],
        batch_size=args.batch_size,
        max_length=args.max_length,
        steps=args.steps,
        warmup=args.warmup,
        gradient_checkpointing=int(args.gradient_checkpointing),
        tiny=int(args.tiny),
        wall_s=wall,
    )
    print(f"total wall time {wall:.0f}s")
    print()
    print(fmt_kv(figures))


if __name__ == "__main__":
    sys.exit(main())
