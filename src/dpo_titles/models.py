"""Loading models and tokenizers safely: never the custom code a model folder names.

A model's `config.json` or `tokenizer_config.json` may name Python classes to import from the
folder or the Hub (`auto_map`); transformers then asks on the terminal whether to run them, and a
`y` on standard input would run them. Every load here passes `trust_remote_code=False`, and a
local folder that needs custom code is refused before transformers opens it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_model_folder(model: str, *, _depth: int = 0) -> None:
    """Refuse a model that is neither a folder here nor a hub id (`owner/name`), a folder that
    names custom code, or a LoRA adapter whose base does."""
    path = Path(model)
    head = model.split("/", 1)[0]
    looks_like_path = (
        model.startswith((".", "/", "~"))
        or os.path.exists(model)
        or model.count("/") != 1
        or os.path.isdir(head)
    )
    if not looks_like_path:
        return  # a hub id: transformers resolves it, with trust_remote_code=False
    if not path.is_dir():
        if "/" not in model:
            raise UserError(
                f"model {model!r} is not a folder here, and a hub model is named owner/name"
            )
        raise UserError(f"model folder {model} does not exist: build it with `make tiny-model`")
    for json_file in sorted(path.glob("*.json")):
        try:
            data = json.loads(json_file.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue  # transformers reports a broken config with its own words
        if isinstance(data, dict) and data.get("auto_map"):
            raise UserError(
                f"model folder {model} needs custom code ({json_file.name} names auto_map "
                "classes): dpo-titles never runs a model's own code; use a model that "
                "transformers supports natively"
            )
    adapter = path / "adapter_config.json"
    if adapter.is_file() and _depth < 2:
        try:
            base = json.loads(adapter.read_text(encoding="utf-8")).get("base_model_name_or_path")
        except (OSError, ValueError, AttributeError):
            base = None
        if isinstance(base, str) and base:
            check_model_folder(base, _depth=_depth + 1)


@contextlib.contextmanager
def _loading(what: str, model: str) -> Iterator[None]:
    """Turn what transformers raises for a model it cannot load into a one-line UserError."""
    try:
        yield
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise UserError(
                f"{what} {model!r} needs custom code: dpo-titles never runs a model's own code; "
                "use a model that transformers supports natively"
            ) from None
        raise UserError(f"cannot load {what} {model!r}: {_first_line(exc)}") from None
    except (OSError, KeyError) as exc:
        raise UserError(f"cannot load {what} {model!r}: {_first_line(exc)}") from None


def load_tokenizer(model: str):
    """The model's tokenizer, without custom code."""
    from transformers import AutoTokenizer

    check_model_folder(model)
    with _loading("tokenizer of", model):
        return AutoTokenizer.from_pretrained(model, trust_remote_code=False)


def load_causal_lm(model: str, dtype=None):
    """A causal language model (or a LoRA adapter on its base), without custom code."""
    from transformers import AutoModelForCausalLM

    check_model_folder(model)
    with _loading("model", model):
        return AutoModelForCausalLM.from_pretrained(model, dtype=dtype, trust_remote_code=False)
