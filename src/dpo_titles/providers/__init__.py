"""Back ends that write titles (generators) and compare them (judges).

`make_generator` and `make_judge` turn a back-end name from the command line or a pipeline
parameter into an object; each back end lives in its own module and is imported only when chosen,
so the data stages do not import torch unless they run a local model.
"""

from __future__ import annotations

from ..errors import UserError
from .base import Judge, SamplingConfig, TitleGenerator

GENERATORS = ("hf", "together", "gemini")
JUDGES = ("rubric", "together", "gemini")
KEY_ENV = {"together": "TOGETHER_API_KEY", "gemini": "GEMINI_API_KEY"}


def _api_backend(name: str, model: str | None, options: dict):
    if name == "together":
        from .together import TogetherBackend as backend
    else:
        from .gemini import GeminiBackend as backend
    allowed = {"policy", "cache_dir", "judge_temperature"}
    return backend(model or None, **{k: v for k, v in options.items() if k in allowed})


def make_generator(name: str, model: str | None = None, **options) -> TitleGenerator:
    if name == "hf":
        from .hf import HFGenerator

        if not model:
            raise UserError("the hf provider needs --model: a local model folder or a hub id")
        return HFGenerator(model, **{k: v for k, v in options.items() if k == "batch_size"})
    if name in ("together", "gemini"):
        return _api_backend(name, model, options)
    raise UserError(f"unknown provider {name!r}: choose one of {', '.join(GENERATORS)}")


def make_judge(name: str, model: str | None = None, **options) -> Judge:
    if name == "rubric":
        from .rubric_judge import RubricJudge

        return RubricJudge()
    if name in ("together", "gemini"):
        return _api_backend(name, model, options)
    raise UserError(f"unknown judge {name!r}: choose one of {', '.join(JUDGES)}")


def missing_keys(*names: str) -> list[str]:
    """The environment variables that the chosen back ends need and that are not set."""
    import os

    needed = {KEY_ENV[n] for n in names if n in KEY_ENV}
    return sorted(v for v in needed if not os.environ.get(v, "").strip())


__all__ = ["Judge", "SamplingConfig", "TitleGenerator", "make_generator", "make_judge"]
