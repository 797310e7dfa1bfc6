"""A response cache for paid API calls, so a retried or resumed stage never pays twice.

One small JSON file per answer, written aside and renamed into place the moment the answer
arrives: a stage killed half-way keeps everything it was already sent, and files (unlike one
database) are safe on the network volumes Kubernetes mounts for a cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def cache_key(**parts) -> str:
    """Key from everything that determines an answer: provider, model, prompt, settings and
    the sample or retry index."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    def __init__(self, root: str | os.PathLike | None):
        self.root = Path(root) if root else None
        self.hits = 0
        self.writes = 0
        if self.root:
            self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        if not self.root:
            return None
        path = self._path(key)
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError):
            # A damaged entry is only a lost answer: ask again rather than fail the stage.
            return None
        self.hits += 1
        return value

    def put(self, key: str, value: dict) -> None:
        if not self.root:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
        self.writes += 1
