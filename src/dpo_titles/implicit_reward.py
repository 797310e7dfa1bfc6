"""DPO's implicit reward on held-out preference pairs.

DPO trains the policy so that r(x, y) = beta * log(pi(y|x) / pi_ref(y|x)) ranks the chosen title
above the rejected one. On validation pairs (ideas never trained on), the share of pairs where
r(chosen) > r(rejected) says whether the tuned model learned the judge's preference or only
memorised the training pairs. The reference is the base model.
"""

from __future__ import annotations

import gc
import logging

from tqdm import tqdm

log = logging.getLogger(__name__)


def _ids(tokenizer, messages: list[dict], **kwargs) -> list[int]:
    ids = tokenizer.apply_chat_template(messages, tokenize=True, **kwargs)
    return list(ids if isinstance(ids, list) else ids["input_ids"])  # v5: a BatchEncoding


def _common(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _split_pair(tokenizer, row: dict) -> tuple[list[int], list[int], list[int]]:
    """Prompt, chosen and rejected ids as DPOTrainer splits them: the completions start where the
    prompt alone stops agreeing with either prompt-plus-completion."""
    prompt = _ids(tokenizer, row["prompt"], add_generation_prompt=True)
    chosen = _ids(tokenizer, row["prompt"] + row["chosen"])
    rejected = _ids(tokenizer, row["prompt"] + row["rejected"])
    cut = min(_common(prompt, chosen), _common(prompt, rejected))
    return prompt[:cut], chosen[cut:], rejected[cut:]


def sequence_logps(
    model_path: str, rows: list[dict], batch_size: int = 16, max_length: int | None = None
) -> list[list[float]]:
    """Sum of log-probabilities of the chosen and of the rejected completion of each row under
    one model: [[chosen, rejected], ...]. With `max_length`, prompt plus completion is cut to it
    from the end, as DPOTrainer does, so the figure matches what training optimised."""
    import torch

    from .providers.hf import load_model_and_tokenizer

    lm, tokenizer = load_model_and_tokenizer(model_path)
    device = next(lm.parameters()).device
    pad = tokenizer.pad_token_id
    items = []
    for row in rows:
        p, chosen, rejected = _split_pair(tokenizer, row)
        for c in (chosen, rejected):
            if max_length:
                c = c[: max(0, max_length - len(p))]
            items.append((p, c))
    out: list[float] = []
    name = model_path.rstrip("/").split("/")[-1]
    with tqdm(total=len(items), desc=f"log-probs {name}", unit="seq") as bar:
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            width = max(len(p) + len(c) for p, c in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            labels = torch.full((len(chunk), width), -100, dtype=torch.long)
            for i, (p, c) in enumerate(chunk):
                seq = p + c
                ids[i, : len(seq)] = torch.tensor(seq)
                mask[i, : len(seq)] = 1
                labels[i, len(p) : len(seq)] = torch.tensor(c)
            with torch.no_grad():
                logits = lm(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            logits = logits[:, :-1].float()
            targets = labels[:, 1:].to(device)
            logp = torch.log_softmax(logits, dim=-1)
            picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            picked = picked * (targets != -100)
            out.extend(picked.sum(-1).tolist())
            bar.update(len(chunk))
    del lm
    gc.collect()
    return [out[i : i + 2] for i in range(0, len(out), 2)]


def implicit_reward_accuracy(
    base_model: str,
    tuned_model: str,
    rows: list[dict],
    beta: float,
    batch_size: int = 16,
    max_length: int | None = None,
) -> dict:
    """Share of pairs whose implicit reward margin is positive, and the mean margin."""
    if not rows:
        return {}
    ref = sequence_logps(base_model, rows, batch_size, max_length)
    pol = sequence_logps(tuned_model, rows, batch_size, max_length)
    margins = [beta * ((pc - rc) - (pr - rr)) for (pc, pr), (rc, rr) in zip(pol, ref, strict=True)]
    accuracy = sum(m > 0 for m in margins) / len(margins)
    log.info(
        "implicit reward: chosen above rejected on %.1f%% of %d validation pairs",
        100 * accuracy,
        len(margins),
    )
    return {
        "implicit_reward_accuracy": round(accuracy, 4),
        "implicit_reward_margin_mean": round(sum(margins) / len(margins), 4),
        "implicit_reward_pairs": len(margins),
        "implicit_reward_beta": beta,
    }


def sample_pairs(validation, count: int, seed: int) -> list[dict]:
    """A seeded sample of `count` validation pairs, across ideas (the rows are grouped by
    idea, so the first rows would all be a few ideas')."""
    if count <= 0 or not len(validation):
        return []
    return list(validation.shuffle(seed=seed).select(range(min(count, len(validation)))))
