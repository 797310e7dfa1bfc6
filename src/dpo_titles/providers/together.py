"""The `together` back end: Together AI chat completions through the `together` SDK (3.x).

The SDK's own retries are switched off (`max_retries=0`): `api_calls` retries with jitter, honours
`Retry-After` and counts every attempt. The base URL follows `TOGETHER_BASE_URL`, which the SDK
reads itself.
"""

from __future__ import annotations

import json

from ..api_calls import TransientError
from ..errors import UserError
from ..redaction import redact
from .api import ApiBackend


def retry_after_seconds(headers) -> float | None:
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) / scale)
            except ValueError:
                continue
    return None


class TogetherBackend(ApiBackend):
    """See its entry in providers.BACKENDS."""

    def new_client(self):
        from together import AsyncTogether

        return AsyncTogether(api_key=self.api_key, max_retries=0, timeout=self.policy.timeout_s)

    async def close_client(self, client) -> None:
        await client.close()

    async def complete(self, payload: dict) -> dict:
        import together

        settings = payload["settings"]
        kwargs = {
            "model": self.model,
            "messages": [{"role": "user", "content": payload["prompt"]}],
            "temperature": settings["temperature"],
            "max_tokens": settings["max_tokens"],
        }
        if "top_p" in settings:
            kwargs["top_p"] = settings["top_p"]
        if "seed" in settings:
            kwargs["seed"] = settings["seed"]
        if payload["schema"] in ("verdict", "ranking"):
            kwargs["response_format"] = {"type": "json_object"}
        try:
            resp = await self.client().chat.completions.create(**kwargs)
        except together.RateLimitError as exc:
            raise TransientError("429", retry_after_seconds(exc.response.headers)) from None
        except together.InternalServerError as exc:
            raise TransientError(
                str(exc.status_code), retry_after_seconds(exc.response.headers)
            ) from None
        except together.APITimeoutError:
            raise TransientError("timeout") from None
        except together.APIConnectionError:
            raise TransientError("connection") from None
        except json.JSONDecodeError:
            raise TransientError("malformed body") from None
        except together.AuthenticationError:
            raise UserError(
                "Together rejected TOGETHER_API_KEY (401): check the key in the environment"
            ) from None
        except together.APIStatusError as exc:
            raise UserError(
                f"Together rejected the request ({exc.status_code}): "
                f"{redact(str(exc.message))[:200]}; check the model name and settings"
            ) from None
        if not resp.choices:
            return {"text": None, "finish": "no choices"}
        choice = resp.choices[0]
        return {"text": choice.message.content, "finish": str(choice.finish_reason)}
