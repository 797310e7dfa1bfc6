"""The `hf` generator: a local `transformers` model, sampled in batches.

Prompts are batched with left padding so that every row's answer starts at the same position;
one prompt at a time would leave most of the hardware idle.
"""

from __future__ import annotations

import logging
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
    """Load a causal LM and its tokenizer for generation (left padding), never custom code."""
    import torch

    from ..models import load_causal_lm, load_tokenizer

    device = device or pick_device()
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    tokenizer = load_tokenizer(model)
    lm = load_causal_lm(model, dtype)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    lm.to(device).eval()
    return lm, tokenizer


def decoding(sampling: SamplingConfig, n: int) -> dict:
    """`generate` settings for `sampling`. Temperature 0 is deterministic: greedy for one answer
    per prompt, and for several a beam search returning the `n` best beams, since greedy
    decoding would give the same answer `n` times."""
    if sampling.temperature > 0:
        return {"do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p}
    return {"do_sample": False, "num_beams": n, "temperature": None, "top_p": None}


class HFGenerator:
    """Titles from a local transformers model, sampled in batches."""

    provider = "hf"

    @classmethod
    def create(cls, spec, model=None, *, batch_size: int = DEFAULT_BATCH_SIZE, **_):
        """The registry's factory; options for API back ends are ignored."""
        if not model:
            raise UserError("the hf back end needs --model: a local model folder or a hub id")
        return cls(model, batch_size=batch_size)

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
                    **decoding(sampling, n),
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
