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

from .outputs import write_private_file


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
        write_private_file(path, json.dumps(value, ensure_ascii=False).encode("utf-8"))
        self.writes += 1


def use_cache_volume(root: str) -> str | None:
    """Point the Hugging Face cache at a mounted cache volume and return its response-cache
    folder, or None when `root` is empty or not mounted (kfp.local ignores volume mounts, so a
    local run goes on without one).

    Call it before transformers or huggingface_hub is imported: they read HF_HOME at import.
    """
    import logging

    log = logging.getLogger(__name__)
    if not root:
        return None
    volume = Path(root)
    if not volume.is_dir() or not os.access(volume, os.W_OK):
        log.info("no writable cache volume at %s: running without the shared cache", root)
        return None
    os.environ["HF_HOME"] = str(volume / "huggingface")
    log.info("cache volume at %s: Hugging Face cache and API responses kept there", root)
    return str(volume / "responses")
