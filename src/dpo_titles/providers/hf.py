"""The `hf` generator: a local `transformers` model, sampled in batches.

Prompts are batched with left padding so that every row's answer starts at the same position;
one prompt at a time would leave most of the hardware idle.
"""

from __future__ import annotations

import logging
import os
import time

from ..errors import UserError
from ..prompts import prompt_messages
from .base import Generated, SamplingConfig

log = logging.getLogger(__name__)

# Rows (prompts x samples) per generate call. bench/eval_generation.py: on two CPU cores 64 rows
# are over 4x faster than one prompt at a time for the tiny model; a 0.5B model's KV cache for 64
# rows of ~150 tokens is well under 1 GB on a GPU.
DEFAULT_BATCH_SIZE = 64


def pick_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def load_model_and_tokenizer(model: str, device: str | None = None):
    """Load a causal LM and its tokenizer for generation (left padding)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or pick_device()
    if os.path.sep in model and not os.path.isdir(model):
        raise UserError(f"model folder {model} does not exist: build it with `make tiny-model`")
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
        lm = AutoModelForCausalLM.from_pretrained(model, dtype=dtype)
    except OSError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot load model {model!r}: {first}") from exc
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    lm.to(device).eval()
    return lm, tokenizer


class HFGenerator:
    provider = "hf"

    def __init__(self, model: str, batch_size: int = DEFAULT_BATCH_SIZE, device: str | None = None):
        self.model = model
        self.batch_size = max(1, int(batch_size))
        self.lm, self.tokenizer = load_model_and_tokenizer(model, device)

    def _prompt_texts(self, ideas: list[str]) -> list[str]:
        return [
            self.tokenizer.apply_chat_template(
                prompt_messages(idea), tokenize=False, add_generation_prompt=True
            )
            for idea in ideas
        ]

    def generate(
        self, ideas: list[str], n: int, sampling: SamplingConfig, progress=None
    ) -> list[list[Generated]]:
        """Sample `n` answers per idea.

        The random stream is re-seeded per batch from `sampling.seed` and the batch's index, so two
        models given the same ideas, settings and seed draw with identical seeds.
        """
        import torch

        out: list[list[Generated]] = []
        texts = self._prompt_texts(ideas)
        per_batch = max(1, self.batch_size // max(1, n))
        for start in range(0, len(texts), per_batch):
            chunk = texts[start : start + per_batch]
            enc = self.tokenizer(
                chunk, return_tensors="pt", padding=True, add_special_tokens=False
            ).to(self.lm.device)
            torch.manual_seed(sampling.seed * 100_003 + start)
            began = time.perf_counter()
            with torch.no_grad():
                ids = self.lm.generate(
                    **enc,
                    do_sample=sampling.temperature > 0,
                    temperature=sampling.temperature if sampling.temperature > 0 else None,
                    top_p=sampling.top_p if sampling.temperature > 0 else None,
                    max_new_tokens=sampling.max_new_tokens,
                    num_return_sequences=n,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            latency = (time.perf_counter() - began) / (len(chunk) * n)
            answers = self.tokenizer.batch_decode(
                ids[:, enc["input_ids"].shape[1] :], skip_special_tokens=True
            )
            for i in range(len(chunk)):
                out.append([Generated(answers[i * n + j], j, round(latency, 4)) for j in range(n)])
            if progress is not None:
                progress.update(len(chunk))
        return out
