"""Shared by bench/train_step.py and bench/gpu_train.py: synthetic DPO data, random-weight Qwen2
models, one DPO variant run in its own process, and the timers and memory probes around it.

Each script starts a fresh child process per variant (`--child VARIANT`), so that one variant's
memory (a reference copy, optimizer states, allocator caches) never shows up in another's peak.
"""

from __future__ import annotations

import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))  # dpo_titles is installed; this covers a bare checkout

from dpo_titles.dataset import to_example  # noqa: E402
from dpo_titles.models import load_causal_lm, load_tokenizer  # noqa: E402
from dpo_titles.recipes import load_recipe  # noqa: E402
from dpo_titles.tiny_model import train_tokenizer  # noqa: E402
from dpo_titles.train import lora_config, run_fields  # noqa: E402

VARIANTS = ("full_ref", "lora", "precompute")
VARIANT_HELP = {
    "full_ref": "(a) full fine-tune, reference = a second full copy of the model (TRL default)",
    "lora": "(b) LoRA r=16 all-linear, reference = the policy with the adapter switched off",
    "precompute": "(c) full fine-tune, reference log-probs computed once before training",
}
RESULT_PREFIX = "RESULT "

# Qwen/Qwen2.5-0.5B(-Instruct) config.json, the published sizes (0.49B parameters, tied head).
QWEN25_05B = dict(
    vocab_size=151936,
    hidden_size=896,
    intermediate_size=4864,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    max_position_embeddings=32768,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
)

# --- synthetic data ---------------------------------------------------------------------------

_TOPICS = (
    "sourdough bread, home espresso, budget travel in Japan, learning Rust, a garage gym, "
    "growing tomatoes, night photography, fixing a bike chain, saving for a house, marathon "
    "training, electric cars, a tiny apartment makeover, cooking for one, beginner chess, "
    "mechanical keyboards, bird watching, cold showers, minimalist wardrobes, solar panels, "
    "retro game consoles, vegan protein, standing desks, dog training, watercolor painting"
).split(", ")
_ANGLES = (
    "what nobody tells beginners about",
    "I tried {} for 30 days",
    "the cheapest way to get into",
    "five mistakes people make with",
    "an honest review of",
    "how experts really approach",
    "a complete guide to",
    "why I quit and came back to",
    "the science behind",
    "testing viral hacks for",
)
_FILLERS = ("you won't believe this", "gone wrong", "must watch", "insane", "the truth")


def _idea(rng: random.Random) -> str:
    topic = rng.choice(_TOPICS)
    angle = rng.choice(_ANGLES)
    text = angle.format(topic) if "{}" in angle else f"{angle} {topic}"
    extra = rng.choice(
        [
            "with real costs and results",
            "filmed over one month",
            "for people with no free time",
            "with a side-by-side comparison",
            "and what I would do differently",
        ]
    )
    return f"A video about {text}, {extra}."


def _good_title(rng: random.Random, idea: str) -> str:
    words = idea.removeprefix("A video about ").rstrip(".").split()
    title = " ".join(words[: rng.randint(5, 9)]).rstrip(",")
    title = title[0].upper() + title[1:]
    if len(title) < 30:
        title += " (Honest Results)"
    return title[:75]


def _bad_title(rng: random.Random, good: str) -> str:
    flaw = rng.randrange(4)
    if flaw == 0:
        return good.split()[0] + "!"  # too short
    if flaw == 1:
        return good.upper() + "!!!"  # shouting
    if flaw == 2:
        return f"{good} - {rng.choice(_FILLERS)} {rng.choice(_FILLERS)} (part {rng.randint(2, 9)})"
    return f"{rng.choice(_FILLERS).title()}: {' '.join(rng.sample(good.split(), k=2))}"


def synthetic_rows(n: int, seed: int) -> list[dict]:
    """`n` preference rows shaped like `dpo_titles.dataset.to_example` writes them: the prompt as
    chat messages, chosen and rejected as one assistant message each (no `idea` column, as
    train.py selects)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        idea = _idea(rng)
        good = _good_title(rng, idea)
        row = to_example({"idea": idea, "chosen": good, "rejected": _bad_title(rng, good)})
        rows.append({k: row[k] for k in ("prompt", "chosen", "rejected")})
    return rows


def write_rows(rows: list[dict], path: Path) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


# --- the model folder -------------------------------------------------------------------------


def build_model_folder(out: Path, sizes: dict, rows: list[dict], seed: int, dtype: str) -> dict:
    """Train a BPE tokenizer (the project's `train_tokenizer`, ChatML template) on the synthetic
    text and save a random-weight Qwen2 of `sizes` next to it, loadable with `from_pretrained`.

    The tokenizer learns only a few thousand tokens from this text; the model's vocabulary is
    `sizes["vocab_size"]` all the same (like Qwen's, which is larger than its tokenizer), so the
    embedding and the tied LM head have their real size and cost."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    random.seed(seed)
    torch.manual_seed(seed)
    texts = [m["content"] for r in rows for m in r["prompt"] + r["chosen"] + r["rejected"]]
    tokenizer = train_tokenizer(texts, min(sizes["vocab_size"], 32000))
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = Qwen2Config(
        **sizes,
        bos_token_id=None,
        eos_token_id=im_end,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2ForCausalLM(config).to(getattr(torch, dtype))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    n_embed = model.get_input_embeddings().weight.numel()
    return {
        "params": n_params,
        "embedding_params": n_embed,
        "tokenizer_vocab": len(tokenizer),
        "model_vocab": sizes["vocab_size"],
    }


# --- memory probes ----------------------------------------------------------------------------


def _status_kb(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1))


def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def hwm_mb() -> float:
    """The process's peak RSS (VmHWM) since it started or since the last `reset_hwm`. The kernel
    keeps it exactly, so no short spike is missed (ru_maxrss reads the same counter)."""
    return _status_kb("VmHWM") / 1024


def reset_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0, `echo 5 > /proc/self/clear_refs`)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# --- one variant, in the child process --------------------------------------------------------


def child_run(opts: dict, gate=None) -> dict:
    """Run one variant: build the trainer (reference model / precompute included), train
    `opts["steps"]` steps, and measure step time and peak memory. Returns a JSON-able dict.

    `gate`, when given, is called at the start of every step, before its clock starts, and
    returns when the step may run (see `run_lockstep`)."""
    import torch
    import transformers
    import trl
    from transformers import TrainerCallback
    from trl import DPOTrainer

    variant = opts["variant"]
    cuda = opts["device"] == "cuda"
    if not cuda:
        torch.set_num_threads(opts["threads"])
    transformers.logging.set_verbosity_error()
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    from datasets import Dataset

    rows = read_rows(Path(opts["data"]))
    rows = rows[: opts["steps"] * opts["batch_size"]]
    train = Dataset.from_list(rows)

    # Baseline: after the imports and the data, before any model exists.
    import gc

    if cuda:
        torch.cuda.init()
        torch.zeros(1, device="cuda")  # the context exists before the baseline
    gc.collect()
    base_rss = rss_mb()
    hwm_ok = reset_hwm()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated() / 2**20

    random.seed(opts["seed"])
    torch.manual_seed(opts["seed"])
    began = time.perf_counter()
    dtype = getattr(torch, opts["dtype"])
    tokenizer = load_tokenizer(opts["model"])
    policy = load_causal_lm(opts["model"], dtype)

    times: list[float] = []
    cpu_times: list[float] = []
    tokens: list[int] = []
    padded: list[int] = []

    class StepTimer(TrainerCallback):
        """Wall time of each optimizer step: forward, backward (and the reference forward when
        the variant has one), optimizer step, zero_grad. The batch is fetched before
        on_step_begin, so data loading is not in it."""

        def on_step_begin(self, args, state, control, **kw):
            sync()
            if gate is not None:
                gate()
            self.c0 = time.process_time()
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            sync()
            times.append(time.perf_counter() - self.t0)
            cpu_times.append(time.process_time() - self.c0)

    class CountingDPOTrainer(DPOTrainer):
        def training_step(self, model, inputs, *a, **kw):
            tokens.append(int(inputs["attention_mask"].sum()))
            padded.append(int(inputs["attention_mask"].numel()))
            return super().training_step(model, inputs, *a, **kw)

    # The configuration training builds (recipes.Recipe.dpo_config with train.run_fields), from
    # the recipe of the variant, with the bench's fixed-length run on top.
    recipe = load_recipe(
        "lora" if variant == "lora" else "original",
        {
            "max_steps": opts["steps"],
            "per_device_train_batch_size": opts["batch_size"],
            "gradient_accumulation_steps": 1,
            "learning_rate": opts["learning_rate"],
            "lr_scheduler_type": "constant",
            "warmup_steps": 0,
            "beta": 0.1,
            "loss_type": "sigmoid",
            "max_length": opts["max_length"],
            "precompute_ref_log_probs": variant == "precompute",
            "activation_checkpointing": opts["gradient_checkpointing"],
            "seed": opts["seed"],
            "data_seed": opts["seed"],
            "logging_steps": max(1, opts["steps"]),
        },
    )
    args = recipe.dpo_config(
        **run_fields(
            recipe,
            Path(opts["workdir"]) / f"out-{variant}",
            cuda=cuda,
            bf16=opts["dtype"] == "bfloat16",
            evaluate=False,
            checkpoints=False,
            progress=False,
        )
    )
    # The adapter the `lora` recipe trains (r=16 on every linear layer), built as train.py does.
    peft_config = lora_config(recipe) if recipe.use_lora else None
    trainer = CountingDPOTrainer(
        model=policy,
        args=args,
        train_dataset=train,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[StepTimer()],
    )
    setup_s = time.perf_counter() - began
    has_ref_copy = trainer.ref_model is not None
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.model.parameters())
    if variant == "lora":
        total -= trainable  # the base model's parameters, as in the other variants

    sync()
    setup_peak = hwm_mb() - base_rss
    if cuda:
        setup_peak_cuda = torch.cuda.max_memory_allocated() / 2**20 - base_cuda
        torch.cuda.reset_peak_memory_stats()
    reset_hwm()

    t_train = time.perf_counter()
    result = trainer.train()
    train_s = time.perf_counter() - t_train
    sync()
    train_peak = hwm_mb() - base_rss
    unwrapped = trainer.model.get_base_model() if variant == "lora" else trainer.model

    warm = opts["warmup"]
    timed = times[warm:]
    out = {
        "variant": variant,
        "trl": trl.__version__,
        "torch": torch.__version__,
        "device_name": torch.cuda.get_device_name() if cuda else "cpu",
        "params": total,
        "trainable_params": trainable,
        "ref_copy": has_ref_copy,
        "gradient_checkpointing": bool(getattr(unwrapped, "is_activation_checkpointing", False)),
        "steps": len(times),
        "timed_steps": len(timed),
        "step_s_median": statistics.median(timed) if timed else float("nan"),
        "step_s_all": [round(t, 4) for t in times],
        "step_cpu_s_median": statistics.median(cpu_times[warm:]) if timed else float("nan"),
        "step_cpu_s_all": [round(t, 4) for t in cpu_times],
        "tokens_per_step": statistics.mean(tokens[warm:]) if tokens[warm:] else float("nan"),
        "padded_tokens_per_step": statistics.mean(padded[warm:]) if padded[warm:] else 0.0,
        "setup_s": setup_s,
        "train_s": train_s,
        "train_loss": result.training_loss,
        "base_rss_mb": base_rss,
        "setup_peak_mb": setup_peak,
        "train_peak_mb": train_peak,
        "peak_mb": max(setup_peak, train_peak),
        "peak_rss_abs_mb": base_rss + max(setup_peak, train_peak),
        "hwm_reset": hwm_ok,
    }
    if cuda:
        train_peak_cuda = torch.cuda.max_memory_allocated() / 2**20 - base_cuda
        out.update(
            setup_peak_cuda_mb=setup_peak_cuda,
            train_peak_cuda_mb=train_peak_cuda,
            peak_cuda_mb=max(setup_peak_cuda, train_peak_cuda),
            peak_cuda_reserved_mb=torch.cuda.max_memory_reserved() / 2**20,
        )
    return out


WAIT_LINE = "WAIT"


def child_main(opts_json: str) -> None:
    """The child's side of `run_lockstep`: say WAIT on stdout before each step and run it when
    the parent writes a line to stdin; print the result as the RESULT line at the end."""
    opts = json.loads(opts_json)

    def gate():
        sys.stdout.write(WAIT_LINE + "\n")
        sys.stdout.flush()
        if not sys.stdin.readline():
            raise SystemExit("parent went away")

    out = child_run(opts, gate=gate)
    sys.stdout.write(RESULT_PREFIX + json.dumps(out) + "\n")
    sys.stdout.flush()


def _child_env() -> dict:
    env = dict(os.environ)
    env.update(
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_NO_ADVISORY_WARNINGS="1",
        HF_DATASETS_DISABLE_PROGRESS_BARS="1",
        TQDM_DISABLE="1",
    )
    return env


class _Child:
    def __init__(self, script: str, opts: dict, logdir: Path):
        self.variant = opts["variant"]
        self.log_path = logdir / f"{self.variant}.stderr.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, script, "--child", json.dumps(opts)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=_child_env(),
        )
        self.result = None

    def wait_turn(self) -> bool:
        """Read the child's stdout up to its next WAIT (True) or its RESULT (False)."""
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if line == WAIT_LINE:
                return True
            if line.startswith(RESULT_PREFIX):
                self.result = json.loads(line[len(RESULT_PREFIX) :])
                self.proc.wait()
                return False
        self.proc.wait()
        self.log.flush()
        tail = "\n".join(self.log_path.read_text().splitlines()[-30:])
        raise RuntimeError(f"variant {self.variant} failed (exit {self.proc.returncode}):\n{tail}")

    def go(self) -> None:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def run_lockstep(script: str, all_opts: list[dict], logdir: Path, say=print) -> dict:
    """Run each variant in its own fresh process, their training steps in turn.

    The children start one after another, each running its set-up (model load, reference copy
    or precompute) alone up to its first step. Then the parent lets one step run at a time,
    round robin (a1 b1 c1 a2 b2 c2 ...): no two of our steps ever overlap, and a slow patch
    of outside load on a shared machine falls on all the variants alike instead of on
    whichever ran last. Each process keeps its own peak memory."""
    children: list[_Child] = []
    try:
        for opts in all_opts:
            t = time.perf_counter()
            child = _Child(script, opts, logdir)
            children.append(child)
            if not child.wait_turn():
                raise RuntimeError(f"variant {child.variant} ended before its first step")
            say(f"  {child.variant}: set up in {time.perf_counter() - t:.0f}s, at step 1")
        live = list(children)
        step = 0
        while live:
            step += 1
            t = time.perf_counter()
            for child in list(live):
                child.go()
                if not child.wait_turn():
                    live.remove(child)
            say(f"  round {step}: {time.perf_counter() - t:.1f}s")
        return {c.variant: c.result for c in children}
    finally:
        for c in children:
            c.stop()


def fmt_kv(figures: dict) -> str:
    def one(v):
        if isinstance(v, float):
            return f"{v:.0f}" if 1e4 <= abs(v) < 1e9 else f"{v:.4g}"
        return str(v)

    return " ".join(f"{k}={one(v)}" for k, v in figures.items())
