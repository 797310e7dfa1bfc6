"""Many API calls at once, within limits, without losing or repeating any.

- at most `max_in_flight` requests at a time, and at most `requests_per_minute` started per
  minute (spaced evenly, so a limit is never exceeded in a burst);
- retries with exponential backoff and full jitter on rate limits, server errors, time-outs and
  broken bodies, waiting at least what `Retry-After` asks;
- every answer goes to the response cache as soon as it arrives; an answer that cannot be parsed
  is asked again (a new cache entry per re-ask), a bounded number of times, then recorded as
  failed with its reason. Nothing is dropped without being counted.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from .cache import ResponseCache, cache_key
from .settings import check_number, setting

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallPolicy:
    """How the API back ends call: how many at once, how fast, how long, how often again. The
    fields with a help line are settings (command line, pipeline `api_*`); the rest is tuning."""

    max_in_flight: int = setting(16, "API back ends: most requests at once")
    requests_per_minute: float = setting(
        0.0, "API back ends: most requests started per minute (0: no limit)", flag="--rpm"
    )
    max_retries: int = setting(
        6, "API back ends: retries of a failed request (429, 5xx, time-out, unreadable answer)"
    )
    timeout_s: float = setting(60.0, "API back ends: seconds per request", flag="--timeout")
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    parse_retries: int = 3

    def __post_init__(self):
        check_number("max_in_flight", self.max_in_flight, low=1, integer=True)
        check_number("requests_per_minute", self.requests_per_minute, low=0, note="(0: no limit)")
        check_number("max_retries", self.max_retries, low=0, integer=True)
        check_number("parse_retries", self.parse_retries, low=0, integer=True)
        check_number("timeout_s", self.timeout_s, low=0, low_open=True)


class TransientError(Exception):
    """Worth retrying: 429, 5xx, time-out, a body that is not JSON."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class ParseError(Exception):
    """The answer arrived but is not usable (empty, blocked, wrong shape): ask again."""


@dataclass
class Job:
    key: dict  # what determines the answer: provider, model, prompt, settings, sample
    payload: Any  # what the sender needs


@dataclass
class Outcome:
    value: Any = None
    error: str | None = None
    from_cache: bool = False
    cause: str | None = None  # the kind of failure, one of CAUSES, when `error` is set


# The kinds of failed call, as failures files and stage errors name them.
CAUSES = {
    "429": "rate limited (429)",
    "timeout": "timed out",
    "connection": "connection failed",
    "unreadable": "unreadable answer",
    "unusable": "unusable answer",
    "server": "server error (5xx)",
}


def cause_of(reason: str) -> str:
    """The kind of a retried failure's last reason ("429", "503", "timeout", "malformed
    body", "unreadable answer (...)")."""
    if reason in ("429", "timeout", "connection"):
        return CAUSES[reason]
    if reason.isdigit():
        return CAUSES["server"] if reason.startswith("5") else f"HTTP {reason}"
    return CAUSES["unreadable"]


def summarise_causes(failures: list[dict], limit: int = 3) -> str:
    """ "unreadable answer x12, timed out x3": the most common causes in a failures list."""
    counts = Counter(f.get("cause") or "unknown" for f in failures)
    return ", ".join(f"{cause} x{n}" for cause, n in counts.most_common(limit))


@dataclass
class CallStats:
    requests: int = 0  # answers asked for, cached or not
    http_calls: int = 0  # HTTP requests actually sent, retries included
    cache_hits: int = 0
    retries: int = 0
    reasks: int = 0
    failures: int = 0
    errors: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "errors"}
        out.update({f"errors_{k}": v for k, v in sorted(self.errors.items())})
        return out


class RateLimiter:
    """Starts at most `per_minute` requests a minute, evenly spaced."""

    def __init__(self, per_minute: float):
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self.next_slot = 0.0
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self.lock:
            now = time.monotonic()
            slot = max(now, self.next_slot)
            self.next_slot = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


Sender = Callable[[Any], Awaitable[dict]]
Parser = Callable[[dict, Job], Any]


class GaveUp(TransientError):
    """Every retry of a call failed; `cause` is the kind of the last failure."""

    def __init__(self, attempts: int, reason: str):
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        super().__init__(f"gave up after {tries} (last: {reason})")
        self.cause = cause_of(reason)


async def _send_with_retries(send, job, policy, limiter, stats, rng) -> dict:
    attempt = 0
    while True:
        await limiter.wait()
        stats.http_calls += 1
        try:
            return await asyncio.wait_for(send(job.payload), timeout=policy.timeout_s * 1.5)
        except TransientError as exc:
            reason, retry_after = exc.reason, exc.retry_after
        except TimeoutError:
            reason, retry_after = "timeout", None
        stats.errors[reason] += 1
        attempt += 1
        if attempt > policy.max_retries:
            raise GaveUp(attempt, reason)
        stats.retries += 1
        backoff = min(policy.backoff_max_s, policy.backoff_base_s * 2 ** (attempt - 1))
        delay = rng.uniform(0, backoff)  # full jitter spreads a burst of retries out
        if retry_after is not None:
            delay = max(delay, retry_after)
        await asyncio.sleep(delay)


async def _run_one(job, send, parse, policy, cache, limiter, stats, rng) -> Outcome:
    last_error = "no answer"
    for reask in range(policy.parse_retries + 1):
        key = cache_key(**job.key, reask=reask)
        raw = cache.get(key)
        from_cache = raw is not None
        if from_cache:
            stats.cache_hits += 1
        else:
            try:
                raw = await _send_with_retries(send, job, policy, limiter, stats, rng)
            except GaveUp as exc:
                return Outcome(error=exc.reason, cause=exc.cause)
            cache.put(key, raw)
        stats.requests += 1
        try:
            return Outcome(value=parse(raw, job), from_cache=from_cache)
        except ParseError as exc:
            last_error = f"unusable answer: {exc}"
            stats.errors["unusable"] += 1
            if reask < policy.parse_retries:
                stats.reasks += 1
    return Outcome(
        error=f"{last_error} (asked {policy.parse_retries + 1} times)", cause=CAUSES["unusable"]
    )


def run_jobs(
    jobs: list[Job],
    send: Sender,
    parse: Parser,
    policy: CallPolicy,
    cache: ResponseCache,
    desc: str,
    stats: CallStats | None = None,
    seed: int = 0,
    close: Callable[[], Awaitable[None]] | None = None,
) -> list[Outcome]:
    """Run every job; outcomes come back in the jobs' order."""
    stats = stats or CallStats()
    if not jobs:
        return []

    async def main() -> list[Outcome]:
        limiter = RateLimiter(policy.requests_per_minute)
        gate = asyncio.Semaphore(policy.max_in_flight)
        rng = random.Random(seed)
        bar = tqdm(total=len(jobs), desc=desc, unit="call")

        async def guarded(job: Job) -> Outcome:
            async with gate:
                outcome = await _run_one(job, send, parse, policy, cache, limiter, stats, rng)
            if outcome.error:
                stats.failures += 1
            bar.update(1)
            bar.set_postfix(failed=stats.failures, retries=stats.retries, refresh=False)
            return outcome

        tasks = [asyncio.ensure_future(guarded(j)) for j in jobs]
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            # Read every finished task's exception, so asyncio does not log the others as
            # "never retrieved" when several calls fail on the same bad key at once.
            errors = [t.exception() for t in tasks if t.done() and not t.cancelled()]
            failed = next((e for e in errors if e is not None), None)
            if failed is not None:
                # A fatal error (a rejected key, an unknown model) ends the batch at once
                # instead of repeating it for every remaining call.
                for t in pending:
                    t.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                raise failed
            return [t.result() for t in tasks]
        finally:
            bar.close()
            if close is not None:
                # The SDK's connection pool belongs to this event loop; close it inside it.
                await close()

    return asyncio.run(main())
