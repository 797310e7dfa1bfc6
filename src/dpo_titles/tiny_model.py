"""The tiny offline model: a two-million-parameter Qwen2 and its own tokenizer, built here.

It lets the whole pipeline run with no hub, no key and no GPU. It is trained on the bundled corpus
(data/title_corpus.csv, written by data/make_corpus.py): how-to ideas whose things are drawn from
thousands of nouns, and titles that put the idea's own clause into a template, about half of them
with one flaw (too short, too long, shouting, clickbait filler, off topic). So the base model
writes titles from the words of any idea, with the same mix of habits, and preference tuning has
something to fix.

Two phases: a copy phase (ideas written out twice, the loss on the second copy), where the model
learns to copy from its context, then the chat phase with the original project's prompt, where
each training row holds one idea's prompt once and all of its titles, each title seeing the
prompt and itself only. The tokenizer is byte-level BPE trained until every word the corpus uses
twice is one piece (or the vocabulary is full); rarer and unseen words are copied in parts.
The build is deterministic: the same corpus, builder version and settings write the same bytes.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import UserError
from .files import read_csv
from .outputs import atomic_dir, check_output
from .prompts import prompt_messages
from .settings import check_number, check_seed

log = logging.getLogger(__name__)

# What the build leaves beside the weights: its settings, corpus and size (the report reads it).
INFO_FILE = "tiny_model.json"
# The builder's version, part of what a built model records of its inputs: bump it with any change
# to this module that changes what a build writes, so that `make tiny-model` rebuilds the
# committed copy (models/tiny) instead of keeping one this code no longer writes.
BUILDER_VERSION = 3
_WORD = re.compile(r"[A-Za-z0-9']+")
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Qwen2's pre-tokenizer split (transformers' tokenization_qwen2.PRETOKENIZE_REGEX).
QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# ChatML, as Qwen2 instruct models use; generation stops at <|im_end|>.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class TinyModelConfig:
    # A cap: the pieces are the words of several ideas (`min_word_count`), 8,500 or so.
    vocab_size: int = 16384
    # A word of this many ideas becomes one piece (until `vocab_size`); a word of fewer stays in
    # parts, as an unseen word does, and the model learns to copy it in parts (tokenizer_texts).
    min_word_count: int = 2
    # Narrow and six layers deep: on two CPU cores the step count, not the width, buys copying.
    # Six layers rather than four cost 30% more build time and 5% more DPO time, and the win
    # varied less between files of unseen ideas (0.73-0.79 instead of 0.72-0.82, bench/README.md).
    hidden_size: int = 128
    intermediate_size: int = 384
    num_layers: int = 6
    num_heads: int = 4
    num_kv_heads: int = 4
    # The copy phase: steps of `copy_batch_size` ideas, each written out again after a separator.
    # Copying the idea's words is what an unseen idea needs, and with the chat phase alone it came
    # late: the loss fell from 1.8 to 0.6 only in the 5th to 7th of 8 epochs (5 minutes).
    copy_steps: int = 1200
    copy_batch_size: int = 32
    # A copy batch after every this many chat batches (0: none), so that the chat phase does not
    # wear copying away: the copy loss goes on falling through the chat phase (0.30 to 0.004).
    copy_every: int = 4
    # The chat phase: passes over the corpus's ideas, each with all of its titles.
    epochs: int = 5
    # Ideas a step (each with all of its titles); small, because updates matter more than size.
    batch_size: int = 8
    learning_rate: float = 3e-3
    seed: int = 1234

    def __post_init__(self):
        for name in (
            "vocab_size",
            "min_word_count",
            "hidden_size",
            "intermediate_size",
            "num_layers",
            "num_heads",
            "num_kv_heads",
            "copy_batch_size",
            "batch_size",
        ):
            check_number(name, getattr(self, name), low=1, integer=True)
        check_number("epochs", self.epochs, low=1, high=1000, integer=True)
        check_number("copy_steps", self.copy_steps, low=0, high=100000, integer=True)
        check_number("copy_every", self.copy_every, low=0, high=100000, integer=True)
        check_number("learning_rate", self.learning_rate, low=0, low_open=True)
        check_seed("seed", self.seed)


def read_corpus(path) -> list[tuple[str, str]]:
    """The (idea, title) pairs of a title corpus CSV."""
    rows = read_csv(path, ["idea", "title"], "title corpus")
    pairs = [(r["idea"].strip(), r["title"].strip()) for r in rows]
    pairs = [(i, t) for i, t in pairs if i and t]
    if len(pairs) < 10:
        raise UserError(f"title corpus {path} has {len(pairs)} usable rows: need at least 10")
    return pairs


def train_tokenizer(texts: list[str], vocab_size: int, min_word_count: int):
    """A byte-level BPE tokenizer trained until every word seen `min_word_count` times is one piece
    (or `vocab_size` is reached), returned as transformers loads it back from the model folder."""
    import tempfile

    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # Qwen2's own normalizer and pre-tokenizer: transformers rebuilds a qwen2 model's tokenizer
    # from its vocabulary and merges with these, whatever tokenizer.json says.
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_word_count,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 512
    # Train on exactly what generation and DPO will load: the folder as AutoTokenizer reads it.
    with tempfile.TemporaryDirectory() as tmp:
        fast.save_pretrained(tmp)
        (Path(tmp) / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
        return AutoTokenizer.from_pretrained(tmp, trust_remote_code=False)


def tokenizer_texts(pairs: list[tuple[str, str]], min_word_count: int = 2) -> list[str]:
    """What the tokenizer learns its pieces from: each idea's prompt once, and of each title only
    the words its idea does not have. A word a title copies is counted with its idea, once: so a
    word of one idea stays in parts, as a word of an unseen idea may be, and the model learns to
    copy words in parts; a word of several ideas becomes one piece."""
    texts = ["user\n", "assistant\n"] * min_word_count
    texts += [prompt_messages(idea)[0]["content"] for idea in sorted({i for i, _ in pairs})]
    for idea, title in pairs:
        copied = set(_WORD.findall(idea))
        texts.append(
            " ".join(w for w in title.split(" ") if "".join(_WORD.findall(w)) not in copied)
        )
    return texts


def _encode_groups(tokenizer, pairs) -> list[tuple[list[int], list[list[int]]]]:
    """Per idea: the chat prompt's token ids, and each of its titles' ids with the end of turn."""
    titles: dict[str, list[str]] = {}
    for idea, title in pairs:
        titles.setdefault(idea, []).append(title)
    groups = []
    for idea, answers in titles.items():
        prompt = tokenizer.apply_chat_template(
            prompt_messages(idea), tokenize=False, add_generation_prompt=True
        )
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        a_ids = [
            tokenizer(a + "<|im_end|>", add_special_tokens=False)["input_ids"] for a in answers
        ]
        groups.append((p_ids, a_ids))
    return groups


def _chat_batch(groups, pad: int):
    """A chat-phase batch, one row per idea: its prompt once, then every title, each title seeing
    the prompt and itself only (a block mask, positions restarting after the prompt). The prompt,
    most of every example, is encoded once for all of its titles instead of once per title."""
    import torch

    rows = []
    for p_ids, answers in groups:
        ids, pos, seg, src, tgt = list(p_ids), list(range(len(p_ids))), [0] * len(p_ids), [], []
        for number, a_ids in enumerate(answers, 1):
            start = len(ids)
            # The first token of a title is predicted from the prompt's last position.
            src += [len(p_ids) - 1] + list(range(start, start + len(a_ids) - 1))
            tgt += a_ids
            ids += a_ids
            pos += range(len(p_ids), len(p_ids) + len(a_ids))
            seg += [number] * len(a_ids)
        rows.append((ids, pos, seg, src, tgt))
    width = max(len(r[0]) for r in rows)
    ids = torch.tensor([r[0] + [pad] * (width - len(r[0])) for r in rows])
    pos = torch.tensor([r[1] + [0] * (width - len(r[1])) for r in rows])
    seg = torch.tensor([r[2] + [-1] * (width - len(r[2])) for r in rows])
    at = torch.arange(width)
    causal = at[None, :] <= at[:, None]
    # Padding sees the prompt only, so that no row of the mask is empty.
    mask = causal[None] & ((seg[:, None, :] == 0) | (seg[:, None, :] == seg[:, :, None]))
    row = torch.tensor([b for b, r in enumerate(rows) for _ in r[3]])
    src = torch.tensor([s for r in rows for s in r[3]])
    tgt = torch.tensor([t for r in rows for t in r[4]])
    return {"input_ids": ids, "position_ids": pos, "attention_mask": mask[:, None]}, row, src, tgt


def build_tiny_model(
    corpus, out_dir, config: TinyModelConfig | None = None, *, force: bool = False
) -> Path:
    """Train the tokenizer and the model on `corpus`; write a `from_pretrained` folder."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    config = config or TinyModelConfig()
    check_output(out_dir, inputs=[corpus], force=force, what="--out", folder=True)
    began = time.perf_counter()
    pairs = read_corpus(corpus)
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    ideas = sorted({idea for idea, _ in pairs})
    texts = tokenizer_texts(pairs, config.min_word_count)
    tokenizer = train_tokenizer(texts, config.vocab_size, config.min_word_count)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model_config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=im_end,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2ForCausalLM(model_config)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("tiny model: %.2fM parameters, %d training pairs", n_params / 1e6, len(pairs))
    pad = tokenizer.pad_token_id

    # The copy phase on the ideas alone, then the chat phase in the format, with the original
    # project's prompt, that generation and DPO use; the loss is on the targets only.
    # Deterministic kernels: with the default ones, two builds on a busy machine differed (a
    # reduction's split depends on the threads' timing).
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        groups = _encode_groups(tokenizer, pairs)
        # As the prompt has them: after "**Video Idea**:", with the space.
        idea_ids = [tokenizer(" " + idea, add_special_tokens=False)["input_ids"] for idea in ideas]
        sep = tokenizer.convert_tokens_to_ids("<|im_start|>")
        history = _train(model, groups, idea_ids, config, sep, pad)
    finally:
        torch.use_deterministic_algorithms(deterministic)

    model.eval()
    model.generation_config = GenerationConfig(
        eos_token_id=[im_end, tokenizer.pad_token_id],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=True,
        temperature=0.9,
        top_p=0.95,
        max_new_tokens=40,
    )
    with atomic_dir(out_dir, force=force, kind="tiny-model", what="--out") as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        # Nothing here varies between two builds (no time, no path but the corpus's as given), so
        # a rebuild writes the same bytes.
        info = {
            "built_by": "dpo-titles tiny-model",
            "corpus": str(corpus),
            "corpus_pairs": len(pairs),
            "parameters": n_params,
            "inputs": build_inputs(corpus, config),
            "config": asdict(config),
            "history": history,
        }
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
        (tmp / "README.md").write_text(_model_card(info))
    log.info("tiny model written to %s in %.0fs", out_dir, time.perf_counter() - began)
    return Path(out_dir)


def build_inputs(corpus, config: TinyModelConfig) -> dict:
    """What a build depends on: the corpus's SHA-256, the builder's version and the settings."""
    import hashlib

    digest = hashlib.sha256(Path(corpus).read_bytes()).hexdigest()
    return {"corpus_sha256": digest, "builder_version": BUILDER_VERSION, "config": asdict(config)}


def is_up_to_date(out_dir, corpus, config: TinyModelConfig | None = None) -> bool:
    """Whether `out_dir` holds a tiny model built from this corpus, builder version and settings."""
    info_path = Path(out_dir) / INFO_FILE
    if not (info_path.is_file() and (Path(out_dir) / "model.safetensors").is_file()):
        return False
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return info.get("inputs") == build_inputs(corpus, config or TinyModelConfig())


def _copy_batch(ideas: list[list[int]], sep: int, pad: int, rng: random.Random, size: int):
    """A copy-phase batch: `size` ideas drawn at random, each as its ids, `sep`, its ids again;
    the targets are the second copy."""
    import torch

    picked = [ideas[rng.randrange(len(ideas))] for _ in range(size)]
    width = 2 * max(map(len, picked)) + 1
    ids = torch.tensor([i + [sep] + i + [pad] * (width - 2 * len(i) - 1) for i in picked])
    # Position p predicts the token at p + 1: from the separator to the last token but one.
    row = torch.tensor([b for b, i in enumerate(picked) for _ in i])
    src = torch.tensor([p for i in picked for p in range(len(i), 2 * len(i))])
    tgt = torch.tensor([t for i in picked for t in i])
    return {"input_ids": ids}, row, src, tgt


def _train(model, groups, ideas, config: TinyModelConfig, sep: int, pad: int) -> list[dict]:
    """The copy phase (`copy_steps` batches of ideas written twice), then the chat phase
    (`epochs` passes of `batch_size` ideas with their titles, with a copy batch after every
    `copy_every` of them), each AdamW with a one-cycle schedule; returns the loss per phase,
    epoch and kind of batch."""
    import torch
    from tqdm import tqdm

    steps_per_epoch = math.ceil(len(groups) / config.batch_size)
    copies_per_epoch = steps_per_epoch // config.copy_every if config.copy_every else 0
    chat_steps = (steps_per_epoch + copies_per_epoch) * config.epochs
    model.train()
    history = []
    with tqdm(total=config.copy_steps + chat_steps, desc="tiny-model", unit="step") as bar:

        def run(phase: str, epoch: int, batches, sched) -> None:
            losses: dict[str, list[float]] = {}
            for kind, (inputs, row, src, tgt) in batches:
                hidden = model.model(**inputs).last_hidden_state
                # The output layer runs on the positions that predict a target token only.
                loss = torch.nn.functional.cross_entropy(model.lm_head(hidden[row, src]), tgt)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                sched.optimizer.step()
                sched.step()
                sched.optimizer.zero_grad(set_to_none=True)
                losses.setdefault(kind, []).append(loss.item())
                bar.update(1)
                bar.set_postfix(phase=phase, epoch=epoch, loss=f"{loss.item():.3f}")
            for kind, values in losses.items():
                entry = {
                    "phase": phase,
                    "epoch": epoch,
                    "loss": round(sum(values) / len(values), 4),
                }
                if kind != phase:
                    entry["batches"] = kind
                history.append(entry)

        def schedule(steps: int):
            opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
            return torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=config.learning_rate, total_steps=steps, pct_start=0.1
            )

        def copy_batch():
            return "copy", _copy_batch(ideas, sep, pad, random, config.copy_batch_size)

        if config.copy_steps:
            sched = schedule(config.copy_steps)
            run("copy", 1, (copy_batch() for _ in range(config.copy_steps)), sched)
        sched = schedule(chat_steps)

        def chat_batches(order):
            for s in range(steps_per_epoch):
                picked = order[s * config.batch_size : (s + 1) * config.batch_size]
                yield "chat", _chat_batch([groups[i] for i in picked], pad)
                # Copy batches among the chat ones keep copying sure while the titles are learnt.
                if config.copy_every and (s + 1) % config.copy_every == 0:
                    yield copy_batch()

        for epoch in range(1, config.epochs + 1):
            order = list(range(len(groups)))
            random.shuffle(order)
            run("chat", epoch, chat_batches(order), sched)
    return history


def _model_card(info: dict) -> str:
    return (
        "---\nlibrary_name: transformers\ntags: [dpo-titles, tiny, offline]\n---\n"
        "# dpo-titles tiny offline model\n\n"
        "A Qwen2-architecture model with "
        f"{info['parameters'] / 1e6:.2f}M parameters and a BPE tokenizer trained on "
        f"{info['corpus_pairs']} (idea, title) pairs from `{info['corpus']}`. "
        "It exists so that the "
        "pipeline runs end to end with no hub, key or GPU. It writes titles from its corpus's "
        "templates and the words of the idea it is given, and nothing more; it is not a useful "
        "model of language.\n\n"
        f"Training: {json.dumps(info['config'])}\n"
    )
