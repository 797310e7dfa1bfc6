"""The two small interfaces every back end implements."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

from ..rubric import Verdict
from ..settings import SettingError, check_number, check_seed

# The least temperature that still samples: below it, use 0 (greedy).
MIN_TEMPERATURE = 0.01


@dataclass(frozen=True)
class SamplingConfig:
    """How titles are sampled; temperature 0 is deterministic decoding (greedy, or beam search
    when several titles per prompt are asked for)."""

    temperature: float = 0.9
    top_p: float = 0.95
    max_new_tokens: int = 40
    seed: int = 0

    def __post_init__(self):
        check_number("temperature", self.temperature, low=0, high=100, note="(0 means greedy)")
        if 0 < self.temperature < MIN_TEMPERATURE:
            # Below this, logits / temperature overflow and sampling breaks: say greedy instead.
            raise SettingError(
                "temperature",
                f"must be 0 (greedy) or at least {MIN_TEMPERATURE:g}",
                self.temperature,
            )
        check_number("top_p", self.top_p, low=0, high=1, low_open=True)
        # Titles are short; a larger cap only lets a typo run a batch for minutes.
        check_number("max_new_tokens", self.max_new_tokens, low=1, high=1024, integer=True)
        check_seed("seed", self.seed)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Generated:
    """One raw answer of a generator, before cleaning."""

    text: str
    sample: int
    latency_s: float


class TitleGenerator(Protocol):
    provider: str
    model: str

    def generate(self, ideas: list[str], n: int, sampling: SamplingConfig) -> list[list[Generated]]:
        """Return, for each idea in order, `n` raw answers."""
        ...


class Judge(Protocol):
    name: str

    def compare_many(self, requests: list[tuple[str, str, str]]) -> list[Verdict]:
        """Judge each (idea, title A, title B); the verdict's winner is "A", "B" or "tie"."""
        ...
