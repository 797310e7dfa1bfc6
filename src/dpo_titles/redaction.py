"""The one redactor: no secret reaches a log, an error message, a file or a report.

`redact` takes out of a text the value of every environment variable that holds a secret (the
back ends' API keys, what their SDKs also read, the Hub token: `providers.secret_env`), and any
bearer token; `redact_config` does the same for a configuration shown in the report, and blanks
the values of keys named like secrets.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}")
# Defence in depth for configurations: the pipeline never puts keys in one, a hand-made one might.
_SECRET_KEY = re.compile(
    r"(api_?key|secret|password|passwd|credential|(access|auth|hf)_token)$", re.I
)


def redact(text: str) -> str:
    """`text` with every secret value replaced by the name of its variable, e.g. [HF_TOKEN]."""
    from .providers import secret_env

    for name in secret_env():
        value = os.environ.get(name, "").strip()
        if len(value) >= 4:
            text = text.replace(value, f"[{name}]")
    return _BEARER.sub(r"\1[redacted]", text)


def redact_config(value: Any) -> Any:
    """A configuration (mappings, lists, texts) with secret-named keys blanked and every text
    redacted."""
    if isinstance(value, Mapping):
        return {
            k: "[redacted]" if _SECRET_KEY.search(str(k)) else redact_config(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_config(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value
