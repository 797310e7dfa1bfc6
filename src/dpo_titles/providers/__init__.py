"""The back ends that write titles and compare them: one description each, in `BACKENDS`.

Everything else is derived from this registry: which names the generate, label and evaluate
stages take, which API keys a run needs (and preflight checks), which keys the pipeline mounts
from its Secret, what every message redacts, the command line's help and `dpo-titles backends`.
A back end's client class lives in its own module (named in `client`) and is imported only when
chosen, so the data stages do not import torch unless they run a local model.

Adding a back end: write its module (an `ApiBackend` subclass for a chat API, see together.py)
and add one `Backend` line here.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass

from ..errors import UserError
from .base import Judge, SamplingConfig, TitleGenerator


@dataclass(frozen=True)
class Backend:
    """One back end: its name, what it can do, the key it needs and its client."""

    name: str
    summary: str
    generates: bool
    judges: bool
    client: str  # "module:Class" in this package; the class has `create(backend, model, ...)`
    key_env: str = ""  # the environment variable of its API key; "" for none
    default_model: str = ""
    base_url_env: str = ""  # where its SDK reads another endpoint (a gateway, a test server)
    other_secret_env: tuple[str, ...] = ()  # other variables its SDK reads that hold secrets


BACKENDS = (
    Backend(
        "hf",
        "a local transformers model, sampled in batches (default: the base model: on-policy)",
        generates=True,
        judges=False,
        client="hf:HFGenerator",
    ),
    Backend(
        "rubric",
        "the deterministic rubric of rubric.py (no model, no key)",
        generates=False,
        judges=True,
        client="rubric_judge:RubricJudge",
    ),
    Backend(
        "together",
        "Together AI chat completions (together SDK)",
        generates=True,
        judges=True,
        client="together:TogetherBackend",
        key_env="TOGETHER_API_KEY",
        default_model="meta-llama/Llama-3.3-70B-Instruct-Turbo",
        base_url_env="TOGETHER_BASE_URL",
    ),
    Backend(
        "gemini",
        "Google Gemini (google-genai SDK, JSON-schema output)",
        generates=True,
        judges=True,
        client="gemini:GeminiBackend",
        key_env="GEMINI_API_KEY",
        default_model="gemini-2.5-flash",
        base_url_env="GOOGLE_GEMINI_BASE_URL",
        other_secret_env=("GOOGLE_API_KEY",),
    ),
)
_BY_NAME = {b.name: b for b in BACKENDS}

GENERATORS = tuple(b.name for b in BACKENDS if b.generates)
JUDGES = tuple(b.name for b in BACKENDS if b.judges)
# The API keys the pipeline's Secret may hold, one per back end that needs one.
API_KEYS = tuple(b.key_env for b in BACKENDS if b.key_env)


def backend(name: str, role: str | None = None) -> Backend:
    """The back end called `name`; with `role` ("generate" or "judge"), one that can do it.
    An unknown name is a one-line error listing the known ones."""
    spec = _BY_NAME.get(name)
    known = {"generate": GENERATORS, "judge": JUDGES}.get(role or "", tuple(_BY_NAME))
    if spec is None or name not in known:
        what = {"generate": "back end that writes titles", "judge": "judge"}.get(
            role or "", "back end"
        )
        raise UserError(f"unknown {what} {name!r}: choose one of {', '.join(known)}")
    return spec


def _make(name: str, role: str, model: str | None, options: dict):
    spec = backend(name, role)
    module, _, cls = spec.client.partition(":")
    client = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
    return client.create(spec, model or None, **options)


def make_generator(name: str, model: str | None = None, **options) -> TitleGenerator:
    """The generator called `name` (see BACKENDS), for `model` (its default when empty)."""
    return _make(name, "generate", model, options)


def make_judge(name: str, model: str | None = None, **options) -> Judge:
    """The judge called `name` (see BACKENDS), for `model` (its default when empty)."""
    return _make(name, "judge", model, options)


def missing_keys(*names: str) -> list[str]:
    """The environment variables that the chosen back ends need and that are not set."""
    needed = {_BY_NAME[n].key_env for n in names if n in _BY_NAME and _BY_NAME[n].key_env}
    return sorted(v for v in needed if not os.environ.get(v, "").strip())


def secret_env() -> tuple[str, ...]:
    """Every environment variable that holds a secret: the back ends' keys, what their SDKs
    also read, and the Hub token."""
    from ..hub import TOKEN_ENV

    others = tuple(v for b in BACKENDS for v in b.other_secret_env)
    return (*API_KEYS, *others, TOKEN_ENV)


def describe() -> list[dict]:
    """The registry as rows (for `dpo-titles backends`)."""
    return [
        {
            "name": b.name,
            "writes titles": b.generates,
            "judges": b.judges,
            "key": b.key_env or "-",
            "default model": b.default_model or "-",
            "what": b.summary,
        }
        for b in BACKENDS
    ]


__all__ = [
    "API_KEYS",
    "BACKENDS",
    "GENERATORS",
    "JUDGES",
    "Backend",
    "Judge",
    "SamplingConfig",
    "TitleGenerator",
    "backend",
    "make_generator",
    "make_judge",
    "missing_keys",
]
