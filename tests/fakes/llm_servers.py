"""Loopback fakes of the Together chat-completions and Gemini ``generateContent`` REST APIs.

The real ``together`` and ``google-genai`` SDKs are pointed at these servers (through their own
``base_url`` options or the ``TOGETHER_BASE_URL`` / ``GOOGLE_GEMINI_BASE_URL`` environment
variables), so tests exercise the SDKs' real request building, response parsing, error mapping and
retry behaviour without a network. See ``tests/fakes/README.md`` for the wire formats, the fault
kinds and the prompt contract the :class:`Brain` follows.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "CONTENT_FAULTS",
    "DEFAULT_FAULT_KINDS",
    "FAULT_KINDS",
    "TITLE_FORMATS",
    "TRANSPORT_FAULTS",
    "Brain",
    "FakeLLMServer",
    "FaultPlan",
    "GeminiServer",
    "Task",
    "TogetherServer",
]

# Faults that change the HTTP exchange itself; the Brain never sees them.
TRANSPORT_FAULTS = ("429", "500", "503", "timeout", "malformed", "empty", "blocked", "html")
# Faults that keep a well-formed 200 but make the model's text unusable.
CONTENT_FAULTS = ("few", "neither", "garbage")
FAULT_KINDS = TRANSPORT_FAULTS + CONTENT_FAULTS
DEFAULT_FAULT_KINDS = ("429", "500", "503", "timeout", "malformed", "empty")

TITLE_FORMATS = ("numbered", "bulleted", "json", "json_list", "json_fenced", "chatty", "mixed")

TITLE_MIN, TITLE_MAX = 30, 75


def _stable_int(*parts: object) -> int:
    # hash() is salted per process; tests need the same answer on every run.
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _approx_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


# --------------------------------------------------------------------------------------------
# Fault schedule
# --------------------------------------------------------------------------------------------


class FaultPlan:
    """A deterministic, thread-safe schedule of faults, one draw per API request.

    Request ``i`` (0-based, in arrival order) gets ``scripted[i]`` while the script lasts, and
    afterwards a fault drawn from ``kinds`` with probability ``rate``. The draw for index ``i``
    depends only on ``(seed, i)``, so the sequence is the same on every run however the requests
    interleave; only which concurrent request lands on which index can vary.
    """

    def __init__(
        self,
        rate: float = 0.0,
        kinds: Sequence[str] = DEFAULT_FAULT_KINDS,
        seed: int = 0,
        retry_after_s: float = 0.05,
        timeout_s: float = 2.0,
        scripted: Sequence[str | None] = (),
        retry_after_5xx: bool = False,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1], got {rate}")
        kinds = tuple(kinds)
        if rate > 0 and not kinds:
            raise ValueError("kinds must not be empty when rate > 0")
        unknown = [k for k in (*kinds, *scripted) if k is not None and k not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; known: {FAULT_KINDS}")
        if retry_after_s <= 0:
            # The together SDK ignores Retry-After <= 0 and falls back to ~1 s backoff.
            raise ValueError("retry_after_s must be > 0")
        self.rate = rate
        self.kinds = kinds
        self.seed = seed
        self.retry_after_s = retry_after_s
        self.timeout_s = timeout_s
        self.scripted: tuple[str | None, ...] = tuple(scripted)
        # Off by default, as the real services send Retry-After on 429 only; on, it spares a
        # test the together SDK's ~1-2 s exponential backoff after a 5xx.
        self.retry_after_5xx = retry_after_5xx
        self._lock = threading.Lock()
        self._next_index = 0
        self._history: list[str | None] = []

    @classmethod
    def script(cls, faults: Sequence[str | None], **kwargs: Any) -> FaultPlan:
        """Force ``faults[i]`` on request ``i``; after the script, ``rate`` (default 0) applies."""
        return cls(scripted=faults, **kwargs)

    def fault_for(self, index: int) -> str | None:
        if index < len(self.scripted):
            return self.scripted[index]
        if self.rate <= 0:
            return None
        rng = random.Random(_stable_int("fault", self.seed, index))
        if rng.random() >= self.rate:
            return None
        return self.kinds[rng.randrange(len(self.kinds))]

    def next(self) -> str | None:
        with self._lock:
            fault = self.fault_for(self._next_index)
            self._next_index += 1
            self._history.append(fault)
            return fault

    @property
    def history(self) -> list[str | None]:
        """The fault (or None) given to each request so far, in arrival order."""
        with self._lock:
            return list(self._history)

    def counts(self) -> Counter[str]:
        return Counter(f for f in self.history if f is not None)

    def __repr__(self) -> str:
        return (
            f"FaultPlan(rate={self.rate}, kinds={self.kinds}, seed={self.seed}, "
            f"retry_after_s={self.retry_after_s}, timeout_s={self.timeout_s}, "
            f"scripted={self.scripted}, retry_after_5xx={self.retry_after_5xx})"
        )


# --------------------------------------------------------------------------------------------
# Brain: what a "model" answers
# --------------------------------------------------------------------------------------------

_IDEA_RE = re.compile(r"\*\*Video Idea\*\*:[ \t]*(.+)")
# "<N> titles", with up to three words between ("8 catchy YouTube titles"), but not
# "75 characters for the titles".
_COUNT_RE = re.compile(
    r"\b(\d{1,3})\s+(?:(?!(?:characters?|chars?|letters?|words?|for|of|per)\b)[\w,'-]+\s+){0,3}?"
    r"titles?\b",
    re.IGNORECASE,
)
_TITLE_A_RE = re.compile(r"^[ \t]*Title A:[ \t]*(.+?)[ \t]*$", re.MULTILINE)
_TITLE_B_RE = re.compile(r"^[ \t]*Title B:[ \t]*(.+?)[ \t]*$", re.MULTILINE)
_RANK_LINE_RE = re.compile(r"^.*\bRank\b.*$", re.MULTILINE)
_NUMBERED_RE = re.compile(r"^[ \t]*(\d+)[.)][ \t]+(.+?)[ \t]*$", re.MULTILINE)

_TEMPLATES = (
    "{core}: The Complete Guide",
    "I Tried {core} for 30 Days",
    "{core} (what nobody tells you)",
    "The truth about {core}",
    "{core} in under 10 minutes",
    "Why {core} changes everything",
    "A beginner's guide to {core}",
    "{core}: 5 mistakes to avoid",
    "STOP! Watch This Before {core}",
    "{core}, explained simply",
    "Is {core} worth it? An honest look",
    "How I finally got {core} right",
)
_PAD = " - watch before you start"
_DANGLING = frozenset(
    "a an and at by for from in into of on or the to with without your my our".split()
)
_GARBAGE_PROSE = (
    "Great idea! Honestly any of these directions could work for your channel, it really "
    "depends on your audience, your thumbnail and how you pace the first thirty seconds."
)
UNKNOWN_PROMPT_TEXT = "FAKE-LLM: prompt not understood; see tests/fakes/README.md for the contract."


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1].strip()
    return text


@dataclass(frozen=True)
class Task:
    """What the Brain understood a prompt to ask for."""

    kind: str  # "generate" | "compare" | "rank" | "unknown"
    idea: str = ""
    n: int = 0
    titles: tuple[str, ...] = ()
    # The numbers the rank prompt gave its titles, in prompt order.
    numbers: tuple[int, ...] = ()


@dataclass
class Brain:
    """Deterministic stand-in for a model; see README.md for the prompt contract.

    ``title_format`` shapes free-text title lists; ``position_bias`` is the probability that a
    judge answers "A" (or keeps the given order, when ranking) without looking; ``seed`` salts
    every deterministic choice.
    """

    title_format: str = "numbered"
    position_bias: float = 0.0
    seed: int = 0
    # How a ranking names the titles: "numbers" as the prompt wrote them (1-based), "zero"
    # (0-based positions, as some models answer), or "titles" (the titles' text).
    ranking_style: str = "numbers"
    log: list[Task] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.title_format not in TITLE_FORMATS:
            raise ValueError(f"title_format must be one of {TITLE_FORMATS}")
        if not 0.0 <= self.position_bias <= 1.0:
            raise ValueError("position_bias must be in [0, 1]")
        if self.ranking_style not in ("numbers", "zero", "titles"):
            raise ValueError("ranking_style must be numbers, zero or titles")

    # -- understanding ---------------------------------------------------------------------

    @staticmethod
    def parse(prompt: str) -> Task:
        a, b = _TITLE_A_RE.search(prompt), _TITLE_B_RE.search(prompt)
        if a and b:
            return Task("compare", titles=(_unquote(a.group(1)), _unquote(b.group(1))))
        rank = _RANK_LINE_RE.search(prompt)
        if rank:
            items = _NUMBERED_RE.findall(prompt, rank.end())
            if len(items) >= 2:
                return Task(
                    "rank",
                    titles=tuple(_unquote(t) for _, t in items),
                    numbers=tuple(int(n) for n, _ in items),
                )
        idea = _IDEA_RE.search(prompt)
        if idea:
            count = _COUNT_RE.search(prompt)
            n = int(count.group(1)) if count else 1
            return Task("generate", idea=idea.group(1).strip(), n=n)
        return Task("unknown")

    # -- scoring ---------------------------------------------------------------------------

    @staticmethod
    def score_key(title: str) -> tuple[int, int]:
        """Lower is better: (characters outside 30-75, number of capital letters)."""
        n = len(title)
        return (max(0, TITLE_MIN - n) + max(0, n - TITLE_MAX), sum(c.isupper() for c in title))

    def _biased(self, prompt: str, variant: object) -> bool:
        if self.position_bias <= 0:
            return False
        rng = random.Random(_stable_int("bias", self.seed, prompt, variant))
        return rng.random() < self.position_bias

    # -- writing ---------------------------------------------------------------------------

    def titles(self, idea: str, n: int, *, variant: object = 0) -> list[str]:
        """``n`` distinct titles of 30-75 characters built from the idea's words."""
        words = idea.strip().rstrip(".!?").split() or ["this", "video"]
        offset = _stable_int("titles", self.seed, idea, variant) % len(_TEMPLATES)
        out: list[str] = []
        seen: set[str] = set()
        for i in range(max(0, n)):
            template = _TEMPLATES[(offset + i) % len(_TEMPLATES)]
            cycle = i // len(_TEMPLATES)
            suffix = f" (part {cycle + 1})" if cycle else ""
            title = _fit(template, words, suffix)
            extra = 2
            while title in seen:
                title = _fit(template, words, f"{suffix} #{extra}")
                extra += 1
            seen.add(title)
            out.append(title)
        return out

    def reply(
        self,
        prompt: str,
        *,
        json_mode: bool = False,
        list_key: str | None = "titles",
        variant: object = 0,
        fault: str | None = None,
    ) -> tuple[str, bool]:
        """Return ``(text, truncated)`` for a prompt.

        ``json_mode`` means the request asked for JSON output (Together ``response_format``,
        Gemini ``responseMimeType``); then title lists are JSON whatever ``title_format`` says,
        wrapped in ``{list_key: [...]}`` or bare when ``list_key`` is None. ``truncated`` is true
        when the text stops early, as a model hitting its token limit would.
        """
        task = self.parse(prompt)
        with self._lock:
            self.log.append(task)
        if task.kind == "unknown":
            return (_GARBAGE_PROSE if fault in CONTENT_FAULTS else UNKNOWN_PROMPT_TEXT), False
        applicable = {"generate": ("few",), "compare": ("neither",), "rank": ("few", "neither")}
        if fault in CONTENT_FAULTS and fault not in applicable[task.kind]:
            fault = "garbage"
        if fault == "garbage" and not json_mode:
            return _GARBAGE_PROSE, False
        if task.kind == "generate":
            n = task.n // 2 if fault == "few" else task.n
            titles = self.titles(task.idea, n, variant=variant)
            if json_mode:
                text = json.dumps(titles if list_key is None else {list_key: titles})
            else:
                text = self._format_titles(titles, prompt, variant)
        elif task.kind == "compare":
            text = json.dumps(self._compare(task, prompt, variant, fault))
        else:
            text = json.dumps(self._rank(task, prompt, variant, fault))
        if fault == "garbage":
            # In JSON mode a model rarely writes prose; what breaks parsing is a cut-off object.
            return text[: max(1, len(text) // 2)], True
        return text, False

    def _format_titles(self, titles: list[str], prompt: str, variant: object) -> str:
        fmt = self.title_format
        if fmt == "mixed":
            choices = [f for f in TITLE_FORMATS if f != "mixed"]
            fmt = choices[_stable_int("fmt", self.seed, prompt, variant) % len(choices)]
        if fmt == "numbered":
            return "\n".join(f"{i}. {t}" for i, t in enumerate(titles, 1))
        if fmt == "bulleted":
            return "\n".join(f"- {t}" for t in titles)
        if fmt == "json":
            return json.dumps({"titles": titles})
        if fmt == "json_list":
            return json.dumps(titles)
        if fmt == "json_fenced":
            return "```json\n" + json.dumps({"titles": titles}, indent=2) + "\n```"
        lines = "\n".join(f'{i}. "{t}"' for i, t in enumerate(titles, 1))
        return (
            f"Sure! Here are {len(titles)} titles for your video:\n\n{lines}\n\n"
            "Let me know if you would like more options."
        )

    def _compare(self, task: Task, prompt: str, variant: object, fault: str | None) -> dict:
        a, b = task.titles
        if fault == "neither":
            return {"winner": "neither", "rationale": "Neither title works for this video."}
        if self._biased(prompt, variant):
            return {"winner": "A", "rationale": "Title A reads better."}
        ka, kb = self.score_key(a), self.score_key(b)
        winner = "A" if ka < kb else "B" if kb < ka else "tie"
        return {
            "winner": winner,
            "rationale": (
                f"A: {len(a)} chars, {ka[1]} capitals; B: {len(b)} chars, {kb[1]} capitals "
                "(30-75 characters and fewer capitals is better)."
            ),
        }

    def _rank(self, task: Task, prompt: str, variant: object, fault: str | None) -> dict:
        numbers = list(task.numbers)
        if self._biased(prompt, variant):
            ranking = numbers
            rationale = "Kept the given order."
        else:
            order = sorted(range(len(numbers)), key=lambda i: self.score_key(task.titles[i]))
            ranking = [numbers[i] for i in order]
            rationale = "Ranked by length within 30-75 characters, then fewer capitals."
        if fault == "few":
            ranking = ranking[: max(1, len(ranking) // 2)]
        elif fault == "neither":
            ranking = [*ranking[:-1], max(numbers) + 1]
        if self.ranking_style != "numbers":
            position = {number: k for k, number in enumerate(numbers)}
            ranking = [
                position.get(x, x) if self.ranking_style == "zero" else task.titles[position[x]]
                for x in ranking
                if self.ranking_style == "zero" or x in position
            ]
        return {"ranking": ranking, "rationale": rationale}


def _fit(template: str, words: Sequence[str], suffix: str) -> str:
    budget = TITLE_MAX - (len(template) - len("{core}")) - len(suffix)
    core = ""
    for word in words:
        candidate = f"{core} {word}" if core else word
        if len(candidate) > budget:
            break
        core = candidate
    # A cut-off idea reads badly when it ends on "a" or "without"; drop such dangling words.
    while " " in core and core.rsplit(" ", 1)[1].lower() in _DANGLING:
        core = core.rsplit(" ", 1)[0]
    if not core:
        core = words[0][:budget]
    title = template.format(core=core)
    title = title[0].upper() + title[1:] + suffix
    if len(title) < TITLE_MIN:
        title += _PAD
    return title


def _schema_list_key(schema: Any) -> str | None:
    """Where a response schema wants the title list: None for a bare array, else a key."""
    if not isinstance(schema, dict):
        return "titles"

    def is_array(node: Any) -> bool:
        kind = node.get("type") if isinstance(node, dict) else None
        kinds = kind if isinstance(kind, list) else [kind]
        return any(isinstance(k, str) and k.lower() == "array" for k in kinds)

    if is_array(schema):
        return None
    for key, prop in (schema.get("properties") or {}).items():
        if is_array(prop):
            return key
    return "titles"


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


@dataclass
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


_HTML_PAGE = (
    b"<!doctype html><html><head><title>Sign in</title></head>"
    b"<body>Sign in to the network</body></html>"
)

# status 0: close the connection without writing a response.
_DROP = _Reply(0, b"")


def _json_reply(status: int, payload: Any, **headers: str) -> _Reply:
    return _Reply(status, json.dumps(payload).encode(), dict(headers))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops handshakes when 16 clients connect at once,
    # costing each a 1 s SYN retransmit; a real API front end does not.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        # Keep-alive handler threads block reading the next request; closing their sockets is
        # what lets stop() return without leaving half-open connections behind.
        with self._connections_lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _make_handler(owner: FakeLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = f"Fake{type(owner).__name__}/1.0"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes; with Nagle on, the body waits for the
            # client's delayed ACK and every call costs ~40 ms on loopback.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the SDKs' own errors are what tests look at; access logs are noise

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = owner._handle(self.command, self.path, headers, raw)
            if reply.status == 0:
                self.close_connection = True
                return
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(reply.body)
                self.wfile.flush()
            except OSError:
                # The client gave up (a "timeout" fault) or stop() closed the socket.
                self.close_connection = True

        do_POST = _serve
        do_GET = _serve

    return Handler


class FakeLLMServer:
    """Base class: a loopback HTTP server that records requests and injects faults.

    Use as a context manager, or call :meth:`start` / :meth:`stop`. ``latency_s`` delays every
    answer; ``faults`` schedules failures; ``brain`` writes the model's text; ``api_key``, when
    given, makes the server answer 401/400 like the real service to requests without it.
    """

    default_api_key = "fake-key"

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        faults: FaultPlan | None = None,
        brain: Brain | None = None,
        api_key: str | None = None,
    ) -> None:
        self.latency_s = latency_s
        self.faults = faults
        self.brain = brain if brain is not None else Brain()
        self.api_key = api_key
        self._requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._ids = 0

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeLLMServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _Server(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping on latency or a "timeout" fault
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point the provider's SDK here (for monkeypatch.setenv)."""
        raise NotImplementedError

    # -- records ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request so far: path, method, headers (lower-cased), json, time, fault."""
        with self._lock:
            return list(self._requests)

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self._requests)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- request handling ------------------------------------------------------------------

    def _handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> _Reply:
        url = urlsplit(target)
        try:
            body = json.loads(raw) if raw else None
            bad_json = False
        except ValueError:
            body, bad_json = None, True
        routed = method == "POST" and self._routes(url.path)
        authorized = self.api_key is None or self._key_of(headers, url.query) == self.api_key
        fault = None
        if routed and authorized and not bad_json and self.faults is not None:
            fault = self.faults.next()
        record = {
            "path": url.path,
            "query": url.query,
            "method": method,
            "headers": headers,
            "json": body,
            "time": time.time(),
            "fault": fault,
        }
        with self._lock:
            self._requests.append(record)
            self._ids += 1
            request_id = self._ids
        if self.latency_s > 0:
            self._stopping.wait(self.latency_s)
        if not routed:
            return self._error(404, f"Not found: {method} {url.path}")
        if not authorized:
            return self._unauthorized()
        if bad_json or not isinstance(body, dict):
            return self._error(400, "Request body is not a JSON object.")
        if fault == "timeout":
            assert self.faults is not None
            self._stopping.wait(self.faults.timeout_s)
            fault = None  # answer normally, though the client has normally gone by now
        if self._stopping.is_set():
            return _DROP  # a server going down drops its connections rather than answering
        if fault in ("429", "500", "503"):
            return self._error(int(fault))
        if fault == "html":
            # What a captive portal or a misrouted proxy answers: 200, but a web page.
            return _Reply(200, _HTML_PAGE, content_type="text/html; charset=utf-8")
        return self._answer(body, url.path, fault, request_id)

    # -- provider hooks --------------------------------------------------------------------

    def _routes(self, path: str) -> bool:
        raise NotImplementedError

    def _key_of(self, headers: dict[str, str], query: str) -> str | None:
        raise NotImplementedError

    def _unauthorized(self) -> _Reply:
        raise NotImplementedError

    def _error(self, status: int, message: str | None = None) -> _Reply:
        raise NotImplementedError

    def _answer(self, body: dict, path: str, fault: str | None, request_id: int) -> _Reply:
        raise NotImplementedError

    def _retry_after(self, status: int) -> dict[str, str]:
        plan = self.faults
        if plan is None or (status != 429 and not plan.retry_after_5xx):
            return {}
        return {"Retry-After": f"{plan.retry_after_s:g}"}

    def __repr__(self) -> str:
        where = self.base_url if self.running else "stopped"
        return f"{type(self).__name__}({where}, calls={self.calls})"


def _malformed(payload: dict) -> _Reply:
    # A body cut off mid-object, as a proxy dropping the connection would leave it.
    text = json.dumps(payload)
    return _Reply(200, text[: len(text) // 2].encode())


def _clip(text: str, max_tokens: Any) -> tuple[str, bool]:
    if isinstance(max_tokens, int) and max_tokens > 0 and _approx_tokens(text) > max_tokens:
        return text[: max_tokens * 4], True
    return text, False


class TogetherServer(FakeLLMServer):
    """``POST /v1/chat/completions`` as the Together API (and the ``together`` 3.x SDK) speak it.

    ``base_url`` has no ``/v1``: the SDK's default base URL is ``https://api.together.ai`` and it
    appends ``/v1/chat/completions`` itself.
    """

    path = "/v1/chat/completions"

    @property
    def env(self) -> dict[str, str]:
        return {
            "TOGETHER_BASE_URL": self.base_url,
            "TOGETHER_API_KEY": self.api_key or self.default_api_key,
        }

    def _routes(self, path: str) -> bool:
        return path == self.path

    def _key_of(self, headers: dict[str, str], query: str) -> str | None:
        auth = headers.get("authorization", "")
        return auth[len("Bearer ") :] if auth.startswith("Bearer ") else None

    def _unauthorized(self) -> _Reply:
        return _json_reply(
            401,
            {
                "error": {
                    "message": "Invalid API key provided. You can find your API key at "
                    "https://api.together.xyz/settings/api-keys.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            },
        )

    def _error(self, status: int, message: str | None = None) -> _Reply:
        kinds = {
            400: ("invalid_request_error", "Invalid request."),
            404: ("invalid_request_error", "Not found."),
            429: (
                "rate_limit",
                "You have been rate limited. Your rate limit is 60 queries per minute. "
                "Please navigate to https://api.together.xyz/settings/billing to upgrade.",
            ),
            500: ("server_error", "Internal server error"),
            503: ("service_unavailable", "The server is overloaded or not ready yet."),
        }
        kind, default = kinds.get(status, ("server_error", "Error"))
        payload = {"error": {"message": message or default, "type": kind, "param": None}}
        payload["error"]["code"] = None
        return _json_reply(status, payload, **self._retry_after(status))

    def _answer(self, body: dict, path: str, fault: str | None, request_id: int) -> _Reply:
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not model:
            return self._error(400, "model is required")
        if not isinstance(messages, list) or not messages:
            return self._error(400, "messages must be a non-empty list")
        prompt = "\n".join(
            _together_text(m.get("content")) for m in messages if isinstance(m, dict)
        )
        fmt = body.get("response_format") or {}
        json_mode = isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")
        schema = ((fmt.get("json_schema") or {}).get("schema")) if json_mode else None
        n = body.get("n") if isinstance(body.get("n"), int) and body["n"] > 0 else 1
        choices, completion_tokens = [], 0
        for i in range(n):
            if fault in ("empty", "blocked"):
                text, cut = "", False
            else:
                text, cut = self.brain.reply(
                    prompt,
                    json_mode=json_mode,
                    list_key=_schema_list_key(schema),
                    variant=(body.get("seed"), i),
                    fault=fault,
                )
            text, clipped = _clip(text, body.get("max_tokens"))
            completion_tokens += _approx_tokens(text) if text else 0
            choices.append(
                {
                    "index": i,
                    "seed": body.get("seed"),
                    "finish_reason": "length" if (cut or clipped) else "stop",
                    "logprobs": None,
                    "message": {"role": "assistant", "content": text, "tool_calls": []},
                }
            )
        prompt_tokens = _approx_tokens(prompt)
        payload = {
            "id": f"fake-{request_id:08x}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "prompt": [],
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        if fault == "malformed":
            return _malformed(payload)
        return _json_reply(200, payload)


def _together_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


_GEMINI_PATH_RE = re.compile(
    r"^/(?:v1|v1beta|v1alpha)/(?P<model>(?:models|tunedModels)/[^/:]+):generateContent$"
)
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_GOOGLE_MESSAGE = {
    429: "You exceeded your current quota, please check your plan and billing details.",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}


class GeminiServer(FakeLLMServer):
    """``POST /{version}/models/{model}:generateContent`` as the Gemini API speaks it.

    ``base_url`` is the bare origin: google-genai appends ``/{api_version}/models/...`` itself
    (``v1`` by default in 3.x, or whatever ``HttpOptions(api_version=...)`` says).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._blocked_served = 0

    @property
    def env(self) -> dict[str, str]:
        return {
            "GOOGLE_GEMINI_BASE_URL": self.base_url,
            "GEMINI_API_KEY": self.api_key or self.default_api_key,
        }

    def _routes(self, path: str) -> bool:
        return _GEMINI_PATH_RE.match(path) is not None

    def _key_of(self, headers: dict[str, str], query: str) -> str | None:
        return headers.get("x-goog-api-key") or (parse_qs(query).get("key") or [None])[0]

    def _unauthorized(self) -> _Reply:
        # The real API answers a bad key with 400, not 401.
        return self._error(400, "API key not valid. Please pass a valid API key.")

    def _error(self, status: int, message: str | None = None) -> _Reply:
        error: dict[str, Any] = {
            "code": status,
            "message": message or _GOOGLE_MESSAGE.get(status, "Error"),
            "status": _GOOGLE_STATUS.get(status, "UNKNOWN"),
        }
        headers = self._retry_after(status)
        if status == 429 and headers:
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{float(headers['Retry-After']):g}s",
                }
            ]
        reply = _json_reply(status, {"error": error}, **headers)
        reply.content_type = "application/json; charset=UTF-8"
        return reply

    def _answer(self, body: dict, path: str, fault: str | None, request_id: int) -> _Reply:
        match = _GEMINI_PATH_RE.match(path)
        assert match is not None
        model = match.group("model").split("/", 1)[1]
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            return self._error(400, "* GenerateContentRequest.contents: contents is not specified")
        config = body.get("generationConfig") or {}
        if "responseSchema" in config and "responseJsonSchema" in config:
            return self._error(400, "responseSchema and responseJsonSchema are mutually exclusive")
        texts = list(_gemini_texts(body.get("systemInstruction")))
        for content in contents:
            texts.extend(_gemini_texts(content))
        prompt = "\n".join(texts)
        json_mode = config.get("responseMimeType") == "application/json"
        schema = config.get("responseSchema") or config.get("responseJsonSchema")
        count = config.get("candidateCount")
        n = count if isinstance(count, int) and count > 0 else 1
        prompt_tokens = _approx_tokens(prompt)
        payload: dict[str, Any] = {"modelVersion": model, "responseId": f"fake-{request_id:08x}"}
        candidates_tokens = 0
        if fault == "blocked" and self._next_blocked_style() == "prompt":
            payload["promptFeedback"] = {"blockReason": "SAFETY", "safetyRatings": _UNSAFE}
        elif fault == "blocked":
            payload["candidates"] = [
                {"finishReason": "SAFETY", "index": 0, "safetyRatings": _UNSAFE}
            ]
        elif fault == "empty":
            payload["candidates"] = [
                {"content": {"role": "model"}, "finishReason": "STOP", "index": 0}
            ]
        else:
            candidates = []
            for i in range(n):
                text, cut = self.brain.reply(
                    prompt,
                    json_mode=json_mode,
                    list_key=_schema_list_key(schema),
                    variant=(config.get("seed"), i),
                    fault=fault,
                )
                text, clipped = _clip(text, config.get("maxOutputTokens"))
                candidates_tokens += _approx_tokens(text)
                candidates.append(
                    {
                        "content": {"parts": [{"text": text}], "role": "model"},
                        "finishReason": "MAX_TOKENS" if (cut or clipped) else "STOP",
                        "index": i,
                    }
                )
            payload["candidates"] = candidates
        payload["usageMetadata"] = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": candidates_tokens,
            "totalTokenCount": prompt_tokens + candidates_tokens,
        }
        if fault == "malformed":
            return _malformed(payload)
        reply = _json_reply(200, payload)
        reply.content_type = "application/json; charset=UTF-8"
        return reply

    def _next_blocked_style(self) -> str:
        # Gemini blocks in two ways; alternate so a test that sees two blocks sees both.
        with self._lock:
            style = "prompt" if self._blocked_served % 2 == 0 else "candidate"
            self._blocked_served += 1
        return style


_UNSAFE = [
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
]


def _gemini_texts(content: Any) -> Iterable[str]:
    if isinstance(content, dict):
        for part in content.get("parts") or []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"]
