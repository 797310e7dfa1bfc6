"""The two small interfaces every back end implements."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

from ..settings import Sampling, check_seed


@dataclass(frozen=True)
class SamplingConfig:
    """What a generator samples with: the stage's `settings.Sampling`, and its seed."""

    temperature: float = Sampling.temperature
    top_p: float = Sampling.top_p
    max_new_tokens: int = Sampling.max_new_tokens
    seed: int = 0

    def __post_init__(self):
        Sampling(self.temperature, self.top_p, self.max_new_tokens)  # checks the ranges
        check_seed("seed", self.seed)

    @classmethod
    def of(cls, sampling: Sampling, seed: int) -> SamplingConfig:
        """The sampling of a stage, with its seed."""
        return cls(sampling.temperature, sampling.top_p, sampling.max_new_tokens, seed)

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


@dataclass(frozen=True)
class Verdict:
    """Which of two titles is better: "A", "B", "tie" (or "error" when the judge gave no usable
    answer), with a short reason and, where the judge has them, the two scores."""

    winner: str
    rationale: str
    score_a: float
    score_b: float


@dataclass(frozen=True)
class Ranking:
    """An idea's titles, best first, as indices into the titles as given."""

    order: list[int]
    rationale: str
    scores: list[float] | None = None  # per title, where the judge has them (rubric)


class Judge(Protocol):
    name: str

    def compare_many(self, requests: list[tuple[str, str, str]]) -> list[Verdict]:
        """Judge each (idea, title A, title B); the verdict's winner is "A", "B" or "tie"."""
        ...

    def rank_many(self, requests: list[tuple[str, list[str]]]) -> list[Ranking | None]:
        """Rank each (idea, titles), best first; None where the judge gave no usable answer."""
        ...
