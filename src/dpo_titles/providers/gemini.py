"""The `gemini` back end: Google Gemini through the `google-genai` SDK, with JSON-schema output.

`google-genai` is the maintained successor of `google-generativeai`, whose support ended on
2025-11-30. Its own retries are off by default and stay off: `api_calls` retries and honours
`Retry-After`. The base URL follows `GOOGLE_GEMINI_BASE_URL`, which the SDK reads itself.
"""

from __future__ import annotations

import json
import re

from ..api_calls import TransientError
from ..errors import UserError
from ..redaction import redact
from .api import ApiBackend
from .together import retry_after_seconds

SCHEMAS = {
    "titles": {
        "type": "object",
        "properties": {"titles": {"type": "array", "items": {"type": "string"}}},
        "required": ["titles"],
    },
    "verdict": {
        "type": "object",
        "properties": {
            "winner": {"type": "string", "enum": ["A", "B", "tie"]},
            "rationale": {"type": "string"},
        },
        "required": ["winner", "rationale"],
    },
    "ranking": {
        "type": "object",
        "properties": {
            "ranking": {"type": "array", "items": {"type": "integer"}},
            "rationale": {"type": "string"},
        },
        "required": ["ranking", "rationale"],
    },
}


def _retry_delay(details) -> float | None:
    """Gemini's RetryInfo detail ("retryDelay": "2s"), when there is no Retry-After header."""
    try:
        for item in (details or {}).get("error", {}).get("details", []):
            match = re.fullmatch(r"([\d.]+)s", str(item.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    except AttributeError:
        return None
    return None


class GeminiBackend(ApiBackend):
    """See its entry in providers.BACKENDS."""

    def new_client(self):
        from google import genai
        from google.genai import types

        return genai.Client(
            api_key=self.api_key,
            http_options=types.HttpOptions(timeout=int(self.policy.timeout_s * 1000)),
        )

    async def close_client(self, client) -> None:
        await client.aio.aclose()

    async def complete(self, payload: dict) -> dict:
        from google.genai import errors, types

        try:
            import httpx2 as transport
        except ImportError:  # older google-genai sends through httpx
            import httpx as transport

        settings = payload["settings"]
        config = types.GenerateContentConfig(
            temperature=settings["temperature"],
            top_p=settings.get("top_p"),
            max_output_tokens=settings["max_tokens"],
            seed=settings.get("seed"),
            response_mime_type="application/json",
            response_json_schema=SCHEMAS[payload["schema"]],
            # No tools are declared; switching function calling off keeps the SDK from logging
            # about it on every call.
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        try:
            resp = await self.client().aio.models.generate_content(
                model=self.model, contents=payload["prompt"], config=config
            )
        except errors.APIError as exc:
            code = getattr(exc, "code", None) or 0
            if code == 429 or code >= 500 or code == 408:
                headers = getattr(getattr(exc, "response", None), "headers", None)
                wait = retry_after_seconds(headers) or _retry_delay(getattr(exc, "details", None))
                raise TransientError(str(code), wait) from None
            if code in (401, 403) or "API key" in str(getattr(exc, "message", "")):
                raise UserError(
                    f"Gemini rejected GEMINI_API_KEY ({code}): check the key in the environment"
                ) from None
            raise UserError(
                f"Gemini rejected the request ({code}): "
                f"{redact(str(getattr(exc, 'message', exc)))[:200]}; check the model name"
            ) from None
        except transport.TimeoutException:
            raise TransientError("timeout") from None
        except transport.TransportError:
            raise TransientError("connection") from None
        except json.JSONDecodeError:
            raise TransientError("malformed body") from None
        feedback = getattr(resp, "prompt_feedback", None)
        if feedback is not None and getattr(feedback, "block_reason", None):
            return {"text": None, "blocked": str(feedback.block_reason)}
        candidates = resp.candidates or []
        finish = str(candidates[0].finish_reason) if candidates else "no candidates"
        parts = (
            candidates[0].content.parts
            if candidates and candidates[0].content and candidates[0].content.parts
            else []
        )
        text = "".join(p.text for p in parts if getattr(p, "text", None)) or None
        if text is None and "SAFETY" in finish:
            return {"text": None, "blocked": "SAFETY"}
        return {"text": text, "finish": finish}
