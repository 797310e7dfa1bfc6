"""The tiny offline model: a one-million-parameter Qwen2 and its own tokenizer, built here.

It lets the whole pipeline run with no hub, no key and no GPU. It is trained as a chat model, with
the original project's prompt, on the bundled corpus (data/title_corpus.csv, written by
data/make_corpus.py): ideas whose titles reuse the idea's own words, about half of them with one
flaw (too short, too long, shouting, clickbait filler, off topic). So the base model writes
readable titles built from its idea, with the same mix of habits, and preference tuning has
something to fix.

The tokenizer is byte-level BPE trained until every word the corpus uses twice is one piece, so
that what the model samples is whole words; a word it has never seen is copied from the prompt in
parts. Each training row holds one idea's prompt once and all of its titles, each title seeing
the prompt and itself only, so the prompt, most of every example, is encoded once per idea.
"""

from __future__ import annotations

import json
import logging
import math
import random
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
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# A word seen at least this often becomes one piece; rarer words stay in parts, as unseen ones do.
MIN_WORD_COUNT = 2
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
    # A cap that the bundled corpus does not reach: every word it uses twice is one piece.
    vocab_size: int = 4096
    # Narrow and four layers deep: on two CPU cores the step count, not the width, buys copying.
    hidden_size: int = 128
    intermediate_size: int = 384
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2
    # Copying from the prompt comes late: in two trial builds, 5 epochs reused a word of the idea in
    # 39% of titles for data/ideas.csv, 8 epochs (with the corpus's fixed off-topic titles) 68%.
    epochs: int = 8
    # Ideas a step (each with all of its titles); small, because updates matter more than size.
    batch_size: int = 8
    learning_rate: float = 3e-3
    seed: int = 1234

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_layers"):
            check_number(name, getattr(self, name), low=1, integer=True)
        for name in ("num_heads", "num_kv_heads", "batch_size"):
            check_number(name, getattr(self, name), low=1, integer=True)
        check_number("epochs", self.epochs, low=1, high=1000, integer=True)
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


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer trained until every word seen `MIN_WORD_COUNT` times is one piece
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
        min_frequency=MIN_WORD_COUNT,
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


def _pack(groups, pad: int):
    """One row per idea: its prompt once, then every title, each title seeing the prompt and itself
    only (a block mask, positions restarting after the prompt). The prompt, most of every example,
    is encoded once for all of its titles instead of once per title."""
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
    return ids, pos, mask[:, None], row, src, tgt


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
    # The chat template's words, as often as the corpus's commonest, so that they are pieces.
    texts = ["user\n", "assistant\n"] * MIN_WORD_COUNT
    texts += [prompt_messages(idea)[0]["content"] for idea in ideas] + [t for _, t in pairs]
    tokenizer = train_tokenizer(texts, config.vocab_size)
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

    # One phase, in the chat format with the original project's prompt, as generation and DPO
    # will use it; the loss is on the titles only.
    history = _train(model, _encode_groups(tokenizer, pairs), config, pad)

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
        info = {
            "built_by": "dpo-titles tiny-model",
            "corpus": str(corpus),
            "corpus_pairs": len(pairs),
            "parameters": n_params,
            "config": asdict(config),
            "history": history,
            "seconds": round(time.perf_counter() - began, 1),
        }
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
        (tmp / "README.md").write_text(_model_card(info))
    log.info("tiny model written to %s in %.0fs", out_dir, info["seconds"])
    return Path(out_dir)


def _train(model, groups, config: TinyModelConfig, pad: int) -> list[dict]:
    """AdamW with a one-cycle schedule over `epochs` passes of `batch_size` ideas a step; returns
    the loss per epoch."""
    import torch
    from tqdm import tqdm

    epochs, lr = config.epochs, config.learning_rate
    steps_per_epoch = math.ceil(len(groups) / config.batch_size)
    total = steps_per_epoch * epochs
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.1)
    model.train()
    history = []
    with tqdm(total=total, desc="tiny-model", unit="step") as bar:
        for epoch in range(epochs):
            order = list(range(len(groups)))
            random.shuffle(order)
            losses = []
            for s in range(steps_per_epoch):
                idx = order[s * config.batch_size : (s + 1) * config.batch_size]
                ids, pos, mask, row, src, tgt = _pack([groups[i] for i in idx], pad)
                hidden = model.model(
                    input_ids=ids, attention_mask=mask, position_ids=pos
                ).last_hidden_state
                # The output layer runs on the positions that predict a title token only.
                logits = model.lm_head(hidden[row, src])
                loss = torch.nn.functional.cross_entropy(logits, tgt)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
            history.append(
                {"phase": "chat", "epoch": epoch + 1, "loss": round(sum(losses) / len(losses), 4)}
            )
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
