"""What the API back ends share: prompts, parsing, top-ups, judging in both orders, ranking.

A back end (`together.py`, `gemini.py`) only says how to send one chat request and how its SDK
reports errors; everything else (concurrency, limits, retries, cache, re-asking) is here and in
`api_calls.py`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from ..api_calls import CallPolicy, CallStats, Job, ParseError, TransientError, run_jobs
from ..cache import ResponseCache
from ..errors import UserError
from ..prompts import generation_prompt, is_compliant, listwise_prompt, pairwise_prompt
from ..redaction import redact
from .base import Generated, Ranking, SamplingConfig, Verdict
from .parse import parse_ranking, parse_titles, parse_verdict

log = logging.getLogger(__name__)

TOP_UP_ROUNDS = 3


def require_key(env_var: str, provider: str) -> str:
    key = os.environ.get(env_var, "").strip()
    if not key:
        raise UserError(
            f"the {provider} back end needs an API key: set {env_var} in the environment "
            "(on a cluster, through the Kubernetes Secret)"
        )
    return key


def answer_text(raw: dict) -> str | None:
    """The text of a cached answer; a safety block is an unusable answer, to be asked again."""
    if raw.get("blocked"):
        raise ParseError(f"blocked ({raw['blocked']})")
    return raw.get("text")


class ApiBackend:
    """Base of the API back ends: a subclass says how to make its SDK client and send one
    chat request (`new_client`, `complete`); its name, key and default model come from its
    entry in `providers.BACKENDS`."""

    def __init__(
        self,
        spec,
        model: str | None = None,
        policy: CallPolicy | None = None,
        cache_dir: str | None = None,
        judge_temperature: float = 0.0,
    ):
        self.spec = spec
        self.provider = spec.name
        self.api_key = require_key(spec.key_env, spec.name)
        self.model = model or spec.default_model
        self.policy = policy or CallPolicy()
        self.cache = ResponseCache(cache_dir)
        self.judge_temperature = judge_temperature
        self.stats = CallStats()
        self.failures: list[dict] = []

    @classmethod
    def create(
        cls, spec, model=None, *, policy=None, cache_dir=None, judge_temperature=0.0, **_
    ) -> ApiBackend:
        """The back end `spec` describes (the registry's factory; options it has no use for,
        such as a local model's batch size, are ignored)."""
        return cls(spec, model, policy, cache_dir, judge_temperature)

    # -- what a back end implements -------------------------------------------------------
    async def complete(self, payload: dict) -> dict:
        """Send one chat request; return {"text": str | None, "finish": str}. Raise
        TransientError for what is worth retrying and UserError for what is not."""
        raise NotImplementedError

    # -- generation -----------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.provider

    _client = None
    _loop = None

    def new_client(self):
        """A fresh async SDK client."""
        raise NotImplementedError

    async def close_client(self, client) -> None:
        """Close what `new_client` made."""

    def client(self):
        # An async client belongs to one event loop; each batch of calls runs in a new one.
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._client, self._loop = self.new_client(), loop
        return self._client

    async def aclose(self) -> None:
        client, self._client, self._loop = self._client, None, None
        if client is not None:
            await self.close_client(client)

    async def _send(self, payload: dict) -> dict:
        try:
            return await self.complete(payload)
        except (TransientError, UserError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001
            # An answer the SDK cannot even read (a body of the wrong shape) is a failed call
            # to retry, not a crash of the whole stage.
            raise TransientError(f"unreadable answer ({type(exc).__name__})") from None

    def _run(self, jobs, parse, desc):
        return run_jobs(
            jobs,
            self._send,
            parse,
            self.policy,
            self.cache,
            desc,
            self.stats,
            close=self.aclose,
        )

    def generate(
        self, ideas: list[str], n: int, sampling: SamplingConfig, progress=None
    ) -> list[list[Generated]]:
        """One request per idea for `n` titles; ideas that come back short are topped up."""
        have: list[list[str]] = [[] for _ in ideas]
        latency: list[float] = [0.0 for _ in ideas]
        last_failure: list[tuple[str | None, str] | None] = [None for _ in ideas]
        for round_ in range(TOP_UP_ROUNDS + 1):
            todo = [i for i, got in enumerate(have) if len(got) < n]
            if not todo:
                break
            jobs = []
            for i in todo:
                missing = n - len(have[i])
                prompt = generation_prompt(ideas[i], missing, avoid=have[i])
                settings = {
                    "temperature": sampling.temperature,
                    "top_p": sampling.top_p,
                    "max_tokens": max(64, 24 * missing),
                    # A new seed per round, or a seeded back end repeats its last answer.
                    "seed": sampling.seed + round_,
                }
                jobs.append(
                    Job(
                        key={
                            "provider": self.provider,
                            "model": self.model,
                            "prompt": prompt,
                            "settings": settings,
                            "sample": round_,
                            "kind": "titles",
                        },
                        payload={"prompt": prompt, "settings": settings, "schema": "titles"},
                    )
                )
            began = time.perf_counter()
            desc = f"{self.provider} titles" + (f" (top-up {round_})" if round_ else "")
            outcomes = self._run(jobs, self._parse_titles, desc)
            per_call = (time.perf_counter() - began) / max(1, len(jobs))
            for i, outcome in zip(todo, outcomes, strict=True):
                latency[i] = round(per_call, 4)
                if outcome.error:
                    last_failure[i] = (outcome.cause, redact(outcome.error))
                    continue
                last_failure[i] = None
                for title in outcome.value:
                    if len(have[i]) < n and title.casefold() not in {t.casefold() for t in have[i]}:
                        have[i].append(title)
        for idea, got, failed in zip(ideas, have, last_failure, strict=True):
            if len(got) < n:
                cause, last = failed or ("too few usable titles", "answers gave too few")
                self.failures.append(
                    {
                        "stage": "generate",
                        "idea": idea,
                        "cause": cause,
                        "reason": f"{len(got)} usable titles of {n} after {TOP_UP_ROUNDS} "
                        f"top-ups ({last})",
                    }
                )
        if progress is not None:
            progress.update(len(ideas))
        return [
            [Generated(t, j, latency[i]) for j, t in enumerate(got)] for i, got in enumerate(have)
        ]

    @staticmethod
    def _parse_titles(raw: dict, job: Job) -> list[str]:
        text = answer_text(raw)
        usable = [t for t in parse_titles(text) if is_compliant(t)]
        if not usable:
            raise ParseError("no title within 30-75 characters")
        return usable

    # -- judging ----------------------------------------------------------------------------
    def _judge_job(self, prompt: str, schema: str) -> Job:
        settings = {"temperature": self.judge_temperature, "max_tokens": 256}
        return Job(
            key={
                "provider": self.provider,
                "model": self.model,
                "prompt": prompt,
                "settings": settings,
                "kind": schema,
            },
            payload={"prompt": prompt, "settings": settings, "schema": schema},
        )

    def compare_many(self, requests: list[tuple[str, str, str]]) -> list[Verdict]:
        jobs = []
        for idea, a, b in requests:
            job = self._judge_job(pairwise_prompt(idea, a, b), "verdict")
            job.payload["titles"] = (a, b)
            jobs.append(job)

        def parse(raw: dict, job: Job):
            return parse_verdict(answer_text(raw), job.payload["titles"])

        outcomes = self._run(jobs, parse, f"{self.provider} judge")
        verdicts = []
        for (idea, a, b), outcome in zip(requests, outcomes, strict=True):
            if outcome.error:
                self.failures.append(
                    {
                        "stage": "label",
                        "idea": idea,
                        "titles": [a, b],
                        "cause": outcome.cause,
                        "reason": redact(outcome.error),
                    }
                )
                verdicts.append(Verdict("error", redact(outcome.error), 0.0, 0.0))
            else:
                winner, rationale = outcome.value
                verdicts.append(Verdict(winner, rationale, 0.0, 0.0))
        return verdicts

    def rank_many(self, requests: list[tuple[str, list[str]]]) -> list[Ranking | None]:
        jobs = []
        for idea, titles in requests:
            job = self._judge_job(listwise_prompt(idea, titles), "ranking")
            job.payload["titles"] = list(titles)
            jobs.append(job)

        def parse(raw: dict, job: Job) -> tuple[list[int], str]:
            return parse_ranking(answer_text(raw), job.payload["titles"])

        outcomes = self._run(jobs, parse, f"{self.provider} rank")
        out: list[Ranking | None] = []
        for (idea, titles), outcome in zip(requests, outcomes, strict=True):
            if outcome.error:
                self.failures.append(
                    {
                        "stage": "label",
                        "idea": idea,
                        "titles": titles,
                        "cause": outcome.cause,
                        "reason": redact(outcome.error),
                    }
                )
                out.append(None)
            else:
                order, rationale = outcome.value
                out.append(Ranking(order, rationale))
        return out
