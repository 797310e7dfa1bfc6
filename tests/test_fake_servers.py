"""The loopback Together / Gemini fakes, driven through the real SDKs (no network)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time

import httpx2
import pytest
import together
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from pydantic import BaseModel

from tests.fakes import TITLE_FORMATS, Brain, FaultPlan, GeminiServer, Task, TogetherServer

IDEA = "how to bake sourdough bread at home without a starter"
GEN_PROMPT = (
    f"You write YouTube titles.\nWrite 6 titles, one per line, numbered.\n**Video Idea**: {IDEA}\n"
)
SHORT, LONG_CAPS = "Sourdough without a starter, step by step", "SOURDOUGH!!!"
COMPARE_PROMPT = (
    f"Which title is better for the video?\n**Video Idea**: {IDEA}\n"
    f"Title A: {LONG_CAPS}\nTitle B: {SHORT}\n"
    'Answer JSON {"winner": "A"|"B"|"tie", "rationale": "..."}.'
)
RANK_TITLES = [LONG_CAPS, SHORT, "Bake sourdough bread at home without any starter at all"]
RANK_PROMPT = "Rank these titles from best to worst:\n" + "\n".join(
    f"{i}. {t}" for i, t in enumerate(RANK_TITLES, 1)
)
MODEL = "gemini-2.5-flash"
TOGETHER_MODEL = "meta-llama/Llama-3.3-70B-Instruct-Turbo"


class Titles(BaseModel):
    titles: list[str]


def parse_titles(text: str) -> list[str]:
    """A lenient reader for every title_format the Brain writes."""
    body = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    if body.startswith(("[", "{")):
        data = json.loads(body)
        return data["titles"] if isinstance(data, dict) else data
    lines = re.findall(r"^\s*(?:\d+[.)]|[-*])\s+(.+?)\s*$", text, re.MULTILINE)
    return [line.strip('"') for line in lines]


def together_client(server: TogetherServer, **kwargs) -> together.Together:
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("timeout", 5.0)
    return together.Together(api_key="fake-key", base_url=server.base_url, **kwargs)


def gemini_client(server: GeminiServer, *, timeout_ms: int = 5000, **kwargs) -> genai.Client:
    options = types.HttpOptions(base_url=server.base_url, timeout=timeout_ms, **kwargs)
    return genai.Client(api_key="fake-key", http_options=options)


def chat(client: together.Together, prompt: str, **kwargs):
    return client.chat.completions.create(
        model=TOGETHER_MODEL, messages=[{"role": "user", "content": prompt}], **kwargs
    )


def gemini_json(client: genai.Client, prompt: str, schema=Titles, **kwargs):
    config = types.GenerateContentConfig(
        temperature=0.7, response_mime_type="application/json", response_schema=schema, **kwargs
    )
    return client.models.generate_content(model=MODEL, contents=prompt, config=config)


@pytest.fixture(autouse=True)
def _no_ambient_provider_env(monkeypatch):
    # A developer's real keys or Vertex settings must not redirect the SDKs during these tests.
    for name in (
        "TOGETHER_API_KEY",
        "TOGETHER_BASE_URL",
        "GOOGLE_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_GEMINI_BASE_URL",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_GENAI_API_VERSION",
    ):
        monkeypatch.delenv(name, raising=False)


# ----------------------------------------------------------------------------------------------
# Happy paths through the real SDKs
# ----------------------------------------------------------------------------------------------


def test_together_sync_titles_and_request_record():
    with TogetherServer() as server:
        response = chat(
            together_client(server), GEN_PROMPT, temperature=0.8, top_p=0.9, max_tokens=400
        )
        request = server.requests[0]
    assert isinstance(response, together.types.chat.ChatCompletion)
    choice = response.choices[0]
    assert choice.finish_reason == "stop"
    titles = parse_titles(choice.message.content)
    assert len(titles) == 6 and len(set(titles)) == 6
    assert all(30 <= len(t) <= 75 for t in titles), titles
    assert all("sourdough" in t.lower() for t in titles)
    assert response.usage.total_tokens > 0
    assert server.calls == 1
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == "Bearer fake-key"
    body = request["json"]
    assert body["model"] == TOGETHER_MODEL
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.8, 0.9, 400)
    assert body["messages"][0]["content"] == GEN_PROMPT


def test_together_async_and_env_base_url(monkeypatch):
    async def go():
        async with together.AsyncTogether(max_retries=0) as client:
            return await client.chat.completions.create(
                model=TOGETHER_MODEL, messages=[{"role": "user", "content": GEN_PROMPT}]
            )

    with TogetherServer() as server:
        for key, value in server.env.items():
            monkeypatch.setenv(key, value)
        response = asyncio.run(go())
        assert server.requests[0]["headers"]["x-stainless-async"].startswith("async:")
    assert len(parse_titles(response.choices[0].message.content)) == 6


def test_together_json_mode_and_n_choices():
    schema = {"type": "object", "properties": {"options": {"type": "array"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "t", "schema": schema}}
    with TogetherServer() as server:
        response = chat(together_client(server), GEN_PROMPT, n=2, response_format=fmt)
    first, second = (json.loads(c.message.content)["options"] for c in response.choices)
    assert len(first) == len(second) == 6
    assert first != second  # each choice is a different sample


def test_gemini_sync_structured_output_and_wire_format():
    with GeminiServer() as server:
        with gemini_client(server) as client:
            response = gemini_json(client, GEN_PROMPT, system_instruction="Be concise.")
        request = server.requests[0]
    assert isinstance(response.parsed, Titles)
    assert len(response.parsed.titles) == 6
    assert all(30 <= len(t) <= 75 for t in response.parsed.titles)
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert request["path"] == f"/v1/models/{MODEL}:generateContent"
    assert request["headers"]["x-goog-api-key"] == "fake-key"
    body = request["json"]
    assert body["contents"] == [{"parts": [{"text": GEN_PROMPT}], "role": "user"}]
    assert body["systemInstruction"]["parts"] == [{"text": "Be concise."}]
    config = body["generationConfig"]
    assert config["temperature"] == 0.7
    assert config["responseMimeType"] == "application/json"
    # A pydantic model goes out as an OpenAPI-style Schema with upper-case types.
    assert config["responseSchema"]["type"] == "OBJECT"
    assert config["responseSchema"]["properties"]["titles"]["type"] == "ARRAY"


def test_gemini_dict_schema_and_plain_text():
    with GeminiServer() as server, gemini_client(server) as client:
        listed = gemini_json(
            client, GEN_PROMPT, schema={"type": "array", "items": {"type": "string"}}
        )
        plain = client.models.generate_content(model=MODEL, contents=GEN_PROMPT)
    assert isinstance(listed.parsed, list) and len(listed.parsed) == 6
    assert len(parse_titles(plain.text)) == 6


def test_gemini_async_and_env_base_url(monkeypatch):
    async def go():
        async with genai.Client().aio as client:
            return await client.models.generate_content(
                model=MODEL,
                contents=GEN_PROMPT,
                config=types.GenerateContentConfig(
                    response_mime_type="application/json", response_schema=Titles
                ),
            )

    with GeminiServer(api_key="env-key") as server:
        for key, value in server.env.items():
            monkeypatch.setenv(key, value)
        response = asyncio.run(go())
        assert server.requests[0]["headers"]["x-goog-api-key"] == "env-key"
    assert len(response.parsed.titles) == 6


def test_judges_compare_and_rank_through_both_sdks():
    with TogetherServer() as ts, GeminiServer() as gs, gemini_client(gs) as gemini:
        client = together_client(ts)
        verdict = json.loads(chat(client, COMPARE_PROMPT).choices[0].message.content)
        ranking = json.loads(chat(client, RANK_PROMPT).choices[0].message.content)
        g_verdict = json.loads(gemini_json(gemini, COMPARE_PROMPT, schema=None).text)
        g_ranking = json.loads(
            gemini.models.generate_content(model=MODEL, contents=RANK_PROMPT).text
        )
    assert verdict["winner"] == g_verdict["winner"] == "B" and verdict["rationale"]
    assert ranking["ranking"] == g_ranking["ranking"] == [2, 3, 1]


def test_gemini_judge_with_schema():
    class Verdict(BaseModel):
        winner: str
        rationale: str

    with GeminiServer() as server, gemini_client(server) as client:
        response = gemini_json(client, COMPARE_PROMPT, schema=Verdict)
    assert response.parsed.winner == "B"


def test_api_key_enforced_like_the_real_services():
    with TogetherServer(api_key="right") as ts, GeminiServer(api_key="right") as gs:
        with pytest.raises(together.AuthenticationError):
            chat(together_client(ts), GEN_PROMPT)
        with gemini_client(gs) as client, pytest.raises(genai_errors.ClientError) as info:
            gemini_json(client, GEN_PROMPT)
    assert info.value.code == 400 and info.value.status == "INVALID_ARGUMENT"


def test_wrong_base_url_is_a_404_not_a_silent_success():
    # Together's 3.x SDK appends /v1 itself: a base URL ending in /v1 is a configuration bug.
    with TogetherServer() as server:
        client = together.Together(
            api_key="k", base_url=server.base_url + "/v1", max_retries=0, timeout=5.0
        )
        with pytest.raises(together.NotFoundError):
            chat(client, GEN_PROMPT)
        assert server.requests[0]["path"] == "/v1/v1/chat/completions"


def test_max_tokens_truncates_like_a_model():
    with TogetherServer() as ts, GeminiServer() as gs, gemini_client(gs) as gemini:
        t = chat(together_client(ts), GEN_PROMPT, max_tokens=10).choices[0]
        g = gemini_json(gemini, GEN_PROMPT, max_output_tokens=10)
    assert t.finish_reason == "length" and len(t.message.content) == 40
    assert g.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert g.parsed is None  # the SDK swallows the JSON error; callers must check


# ----------------------------------------------------------------------------------------------
# Faults as each SDK surfaces them
# ----------------------------------------------------------------------------------------------

TOGETHER_ERRORS = {
    "429": together.RateLimitError,
    "500": together.InternalServerError,
    "503": together.InternalServerError,
    "timeout": together.APITimeoutError,
    "malformed": json.JSONDecodeError,  # raw, not a together.APIError
}


@pytest.mark.parametrize("kind", sorted(TOGETHER_ERRORS))
def test_together_fault_raises(kind):
    plan = FaultPlan.script([kind], timeout_s=0.5, retry_after_s=0.05)
    with TogetherServer(faults=plan) as server:
        with pytest.raises(TOGETHER_ERRORS[kind]) as info:
            chat(together_client(server, timeout=0.15), GEN_PROMPT)
        assert server.calls == 1  # max_retries=0: no SDK retry
    if kind in ("429", "500", "503"):
        assert info.value.status_code == int(kind)
        assert info.value.body["error"]["message"]
    if kind == "429":
        assert info.value.response.headers["retry-after"] == "0.05"
    elif kind in ("500", "503"):
        assert "retry-after" not in info.value.response.headers


@pytest.mark.parametrize("kind", ["empty", "blocked"])
def test_together_empty_content(kind):
    with TogetherServer(faults=FaultPlan.script([kind])) as server:
        assert chat(together_client(server), GEN_PROMPT).choices[0].message.content == ""


GEMINI_ERRORS = {
    "429": genai_errors.ClientError,
    "500": genai_errors.ServerError,
    "503": genai_errors.ServerError,
    # google-genai 3.x sends through httpx2 (a fork of httpx): httpx.TimeoutException misses it.
    "timeout": httpx2.TimeoutException,
    "malformed": json.JSONDecodeError,
}


@pytest.mark.parametrize("kind", sorted(GEMINI_ERRORS))
def test_gemini_fault_raises(kind):
    plan = FaultPlan.script([kind], timeout_s=0.5, retry_after_s=0.05)
    with GeminiServer(faults=plan) as server, gemini_client(server, timeout_ms=150) as client:
        with pytest.raises(GEMINI_ERRORS[kind]) as info:
            gemini_json(client, GEN_PROMPT)
        assert server.calls == 1  # no retry_options: google-genai does not retry
    if kind in ("429", "500", "503"):
        assert info.value.code == int(kind)
        assert info.value.status in ("RESOURCE_EXHAUSTED", "INTERNAL", "UNAVAILABLE")
    if kind == "429":
        assert info.value.response.headers["retry-after"] == "0.05"
        assert info.value.details["error"]["details"][0]["retryDelay"] == "0.05s"


def test_gemini_empty_and_blocked_answers():
    plan = FaultPlan.script(["empty", "blocked", "blocked"])
    with GeminiServer(faults=plan) as server, gemini_client(server) as client:
        empty, prompt_block, candidate_block = (gemini_json(client, GEN_PROMPT) for _ in range(3))
    assert empty.text is None and empty.parsed is None
    assert empty.candidates[0].content.parts is None
    assert prompt_block.candidates is None and prompt_block.text is None
    assert prompt_block.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    assert candidate_block.candidates[0].finish_reason == types.FinishReason.SAFETY
    assert candidate_block.text is None


def test_async_clients_surface_faults_the_same_way():
    async def together_429(server):
        client = together.AsyncTogether(api_key="k", base_url=server.base_url, max_retries=0)
        async with client:
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": GEN_PROMPT}]
            )

    async def gemini_call(server):
        options = types.HttpOptions(base_url=server.base_url, timeout=150)
        async with genai.Client(api_key="k", http_options=options).aio as client:
            await client.models.generate_content(model=MODEL, contents=GEN_PROMPT)

    with TogetherServer(faults=FaultPlan.script(["429"])) as ts:
        with pytest.raises(together.RateLimitError):
            asyncio.run(together_429(ts))
    with GeminiServer(faults=FaultPlan.script(["503", "timeout"], timeout_s=0.5)) as gs:
        with pytest.raises(genai_errors.ServerError):
            asyncio.run(gemini_call(gs))
        with pytest.raises(httpx2.TimeoutException):
            asyncio.run(gemini_call(gs))


def test_content_faults():
    plan = FaultPlan.script(["few", "neither", "garbage", "neither", "garbage"])
    with TogetherServer(faults=plan) as server:
        client = together_client(server)
        few = parse_titles(chat(client, GEN_PROMPT).choices[0].message.content)
        neither = json.loads(chat(client, COMPARE_PROMPT).choices[0].message.content)
        garbage = chat(client, GEN_PROMPT).choices[0].message.content
        bad_rank = json.loads(chat(client, RANK_PROMPT).choices[0].message.content)
        json_mode = chat(client, GEN_PROMPT, response_format={"type": "json_object"}).choices[0]
    assert len(few) == 3
    assert neither["winner"] not in ("A", "B", "tie")
    assert parse_titles(garbage) == [] and "{" not in garbage
    assert max(bad_rank["ranking"]) > len(RANK_TITLES)
    assert json_mode.finish_reason == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads(json_mode.message.content)


# ----------------------------------------------------------------------------------------------
# The SDKs' own retries
# ----------------------------------------------------------------------------------------------


def test_together_default_retries_honour_retry_after():
    plan = FaultPlan.script(["429", "503"], retry_after_s=0.05, retry_after_5xx=True)
    with TogetherServer(faults=plan) as server:
        client = together.Together(api_key="k", base_url=server.base_url)  # max_retries=2
        started = time.monotonic()
        response = chat(client, GEN_PROMPT)
        elapsed = time.monotonic() - started
        retry_counts = [r["headers"]["x-stainless-retry-count"] for r in server.requests]
    assert len(parse_titles(response.choices[0].message.content)) == 6
    assert retry_counts == ["0", "1", "2"]
    # Without Retry-After the SDK would back off ~1 s and then ~2 s.
    assert 0.1 <= elapsed < 0.6


def test_gemini_retries_only_when_asked():
    retry = types.HttpRetryOptions(attempts=3, initial_delay=0.01, max_delay=0.02, jitter=0)
    with GeminiServer(faults=FaultPlan.script(["429", "500"])) as server:
        with gemini_client(server, retry_options=retry) as client:
            response = gemini_json(client, GEN_PROMPT)
        assert server.calls == 3
    assert len(response.parsed.titles) == 6


# ----------------------------------------------------------------------------------------------
# FaultPlan, Brain, latency, lifecycle
# ----------------------------------------------------------------------------------------------


def test_fault_plan_is_deterministic_and_scripted():
    kinds = ("429", "500", "timeout")
    a = FaultPlan(rate=0.3, kinds=kinds, seed=7)
    b = FaultPlan(rate=0.3, kinds=kinds, seed=7)
    draws = [a.next() for _ in range(400)]
    assert draws == [b.next() for _ in range(400)]
    assert draws == a.history
    share = sum(d is not None for d in draws) / len(draws)
    assert 0.2 < share < 0.4 and set(draws) == {None, *kinds}
    assert draws != [FaultPlan(rate=0.3, kinds=kinds, seed=8).next() for _ in range(400)]
    scripted = FaultPlan.script(["429", None, "500"])
    assert [scripted.next() for _ in range(5)] == ["429", None, "500", None, None]
    assert scripted.counts() == {"429": 1, "500": 1}
    with pytest.raises(ValueError):
        FaultPlan(rate=0.5, kinds=("418",))


def test_fault_plan_under_concurrency():
    plan = FaultPlan(rate=0.5, kinds=("500",), seed=1)
    with TogetherServer(faults=plan) as server:
        client = together_client(server)
        outcomes: list[str] = []

        def call():
            try:
                chat(client, GEN_PROMPT)
                outcomes.append("ok")
            except together.InternalServerError:
                outcomes.append("500")

        threads = [threading.Thread(target=call) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert server.calls == 16
    expected = [plan.fault_for(i) for i in range(16)]
    assert outcomes.count("500") == expected.count("500")


@pytest.mark.parametrize("fmt", [f for f in TITLE_FORMATS if f != "mixed"])
def test_brain_title_formats_parse(fmt):
    text, truncated = Brain(title_format=fmt).reply(GEN_PROMPT)
    titles = parse_titles(text)
    assert not truncated and len(titles) == 6 and len(set(titles)) == 6


def test_brain_contract():
    brain = Brain()
    assert brain.parse(GEN_PROMPT) == Task("generate", idea=IDEA, n=6)
    assert brain.parse("Give me 12 catchy YouTube titles.\n**Video Idea**: cats").n == 12
    assert brain.parse(COMPARE_PROMPT).titles == (LONG_CAPS, SHORT)
    assert brain.parse(RANK_PROMPT).numbers == (1, 2, 3)
    assert brain.parse("hello").kind == "unknown"
    many = brain.titles("a very long idea " * 10, 30)
    assert len(set(many)) == 30 and all(30 <= len(t) <= 75 for t in many)
    assert all(30 <= len(t) <= 75 for t in brain.titles("x", 5))
    assert brain.titles(IDEA, 4) == Brain().titles(IDEA, 4)
    assert brain.titles(IDEA, 4, variant=1) != brain.titles(IDEA, 4)


def test_brain_position_bias():
    swapped = COMPARE_PROMPT.replace("Title A: ", "Title X: ").replace("Title B: ", "Title A: ")
    swapped = swapped.replace("Title X: ", "Title B: ")
    fair, biased = Brain(), Brain(position_bias=1.0)
    assert json.loads(fair.reply(swapped)[0])["winner"] == "A"  # SHORT is now A
    assert json.loads(fair.reply(COMPARE_PROMPT)[0])["winner"] == "B"
    assert json.loads(biased.reply(COMPARE_PROMPT)[0])["winner"] == "A"
    assert json.loads(biased.reply(RANK_PROMPT)[0])["ranking"] == [1, 2, 3]
    half = Brain(position_bias=0.5, seed=3)
    winners = [json.loads(half.reply(COMPARE_PROMPT, variant=i)[0])["winner"] for i in range(200)]
    assert 60 < winners.count("A") < 140
    tie = COMPARE_PROMPT.replace(LONG_CAPS, SHORT)
    assert json.loads(fair.reply(tie)[0])["winner"] == "tie"


def test_latency_injection():
    with TogetherServer(latency_s=0.2) as server:
        client = together_client(server)
        chat(client, GEN_PROMPT)  # warm the connection
        started = time.monotonic()
        chat(client, GEN_PROMPT)
        elapsed = time.monotonic() - started
    assert 0.18 <= elapsed < 1.5


def test_servers_stop_cleanly_even_mid_request():
    plan = FaultPlan.script(["timeout"], timeout_s=30)
    server = TogetherServer(faults=plan).start()
    port = server.port
    errors: list[Exception] = []

    def call():
        try:
            chat(together_client(server), GEN_PROMPT)
        except together.APIConnectionError as exc:
            errors.append(exc)

    hung = threading.Thread(target=call, daemon=True)
    hung.start()
    deadline = time.monotonic() + 5
    while server.calls == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.calls == 1
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    hung.join(timeout=2)
    assert not hung.is_alive() and len(errors) == 1  # dropped, not answered
    server.stop()  # idempotent
    assert not server.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5)
    assert not [t for t in threading.enumerate() if t.name == f"TogetherServer:{port}"]
