"""The tiny offline model: a few-million-parameter Qwen2 and its own tokenizer, built here.

It lets the whole pipeline run with no hub, no key and no GPU. It is trained briefly, as a chat
model, on the bundled corpus of (idea, title) pairs, in which about half the titles carry one flaw
(too short, too long, shouting, clickbait filler, off topic). So the base model writes
title-shaped text with the same mix of habits, and preference tuning has something to fix.
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

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# ChatML, as Qwen2 instruct models use; generation stops at <|im_end|>.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class TinyModelConfig:
    vocab_size: int = 2048
    hidden_size: int = 192
    intermediate_size: int = 512
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2
    pretrain_epochs: int = 20
    pretrain_block: int = 64
    epochs: int = 4
    # Small batches: the corpus is small, and the number of updates matters more than their size.
    batch_size: int = 8
    learning_rate: float = 3e-3
    # A gentler second phase keeps what the first learnt instead of shaking it loose.
    chat_learning_rate: float = 1e-3
    seed: int = 1234

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_layers"):
            check_number(name, getattr(self, name), low=1, integer=True)
        for name in ("num_heads", "num_kv_heads", "pretrain_block", "batch_size"):
            check_number(name, getattr(self, name), low=1, integer=True)
        check_number("pretrain_epochs", self.pretrain_epochs, low=0, high=1000, integer=True)
        check_number("epochs", self.epochs, low=1, high=1000, integer=True)
        check_number("learning_rate", self.learning_rate, low=0, low_open=True)
        check_number("chat_learning_rate", self.chat_learning_rate, low=0, low_open=True)
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
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
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
    return fast


def _encode_examples(tokenizer, pairs):
    """Token ids and labels; only the assistant's answer (and its end of turn) is learned."""
    examples = []
    for idea, title in pairs:
        prompt = tokenizer.apply_chat_template(
            prompt_messages(idea), tokenize=False, add_generation_prompt=True
        )
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        a_ids = tokenizer(title + "<|im_end|>", add_special_tokens=False)["input_ids"]
        examples.append((p_ids + a_ids, [-100] * len(p_ids) + a_ids))
    return examples


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
    texts = [
        t
        for idea, title in pairs
        for t in (
            prompt_messages(idea)[0]["content"],
            title,
        )
    ]
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

    # Phase 1: plain language modelling on the corpus text, packed into short blocks. It teaches
    # the words and the shape of titles at a fifth of the cost per epoch of the chat format,
    # whose fixed prompt makes up most of every sequence.
    eot = tokenizer.pad_token_id
    stream: list[int] = []
    for text in sorted({i for i, _ in pairs}) + [t for _, t in pairs]:
        stream += tokenizer(text, add_special_tokens=False)["input_ids"] + [eot]
    block = config.pretrain_block
    blocks = [stream[i : i + block] for i in range(0, len(stream) - block + 1, block)]
    pretrain = [(b, b) for b in blocks]
    # Phase 2: the chat format with the original project's prompt; only the answer is learned.
    chat = _encode_examples(tokenizer, pairs)
    history = []
    history += _train_phase(
        model, pretrain, config, config.pretrain_epochs, config.learning_rate, "pretrain", pad
    )
    history += _train_phase(
        model, chat, config, config.epochs, config.chat_learning_rate, "chat", pad
    )

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
        (tmp / "tiny_model.json").write_text(json.dumps(info, indent=2) + "\n")
        (tmp / "README.md").write_text(_model_card(info))
    log.info("tiny model written to %s in %.0fs", out_dir, info["seconds"])
    return Path(out_dir)


def _train_phase(
    model, examples, config: TinyModelConfig, epochs: int, lr: float, name: str, pad: int
):
    """AdamW with a one-cycle schedule over `epochs` passes; returns the loss per epoch."""
    import torch
    from tqdm import tqdm

    if epochs <= 0 or not examples:
        return []
    steps_per_epoch = math.ceil(len(examples) / config.batch_size)
    total = steps_per_epoch * epochs
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.1)
    model.train()
    history = []
    with tqdm(total=total, desc=f"tiny-model {name}", unit="step") as bar:
        for epoch in range(epochs):
            order = list(range(len(examples)))
            random.shuffle(order)
            losses = []
            for s in range(steps_per_epoch):
                idx = order[s * config.batch_size : (s + 1) * config.batch_size]
                batch = [examples[i] for i in idx]
                width = max(len(ids) for ids, _ in batch)
                ids = torch.tensor([x + [pad] * (width - len(x)) for x, _ in batch])
                labels = torch.tensor([y + [-100] * (width - len(y)) for _, y in batch])
                mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in batch])
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
            history.append(
                {"phase": name, "epoch": epoch + 1, "loss": round(sum(losses) / len(losses), 4)}
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
        "pipeline runs end to end with no hub, key or GPU. It writes title-shaped text and nothing "
        "more; it is not a useful model of language.\n\n"
        f"Training: {json.dumps(info['config'])}\n"
    )
