"""Back ends that write titles (generators) and compare them (judges).

`make_generator` and `make_judge` turn a back-end name from the command line or a pipeline
parameter into an object; each back end lives in its own module and is imported only when chosen,
so the data stages do not import torch unless they run a local model.
"""

from __future__ import annotations

from ..errors import UserError
from .base import Judge, SamplingConfig, TitleGenerator

GENERATORS = ("hf",)
JUDGES = ("rubric",)


def make_generator(name: str, model: str | None = None, **options) -> TitleGenerator:
    if name == "hf":
        from .hf import HFGenerator

        if not model:
            raise UserError("the hf provider needs --model: a local model folder or a hub id")
        return HFGenerator(model, **options)
    raise UserError(f"unknown provider {name!r}: choose one of {', '.join(GENERATORS)}")


def make_judge(name: str, **options) -> Judge:
    if name == "rubric":
        from .rubric_judge import RubricJudge

        return RubricJudge()
    raise UserError(f"unknown judge {name!r}: choose one of {', '.join(JUDGES)}")


__all__ = ["Judge", "SamplingConfig", "TitleGenerator", "make_generator", "make_judge"]
