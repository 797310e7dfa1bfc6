"""Reading and writing the stages' files, so that nothing half-written looks complete.

Every writer goes through `atomic_path`: it writes beside the target and renames into place only
when the content is whole, so a killed stage leaves either the old file or none.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import UserError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.partial")
    if tmp.is_dir():
        shutil.rmtree(tmp)
    try:
        yield tmp
        if target.is_dir() and tmp.is_dir():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_csv(path, rows: Iterable[dict], fieldnames: list[str]) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=fieldnames, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow(row)
    return Path(path)


def read_csv(path, required: Iterable[str], what: str) -> list[dict[str, str]]:
    """Read a CSV written by an earlier stage (or by a user) and check its columns."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} file {path} does not exist: pass the output of the earlier stage")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise UserError(
                    f"{what} file {path} lacks column(s) {', '.join(missing)}: "
                    f"found {', '.join(reader.fieldnames or []) or 'none'}"
                )
            return list(reader)
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} file {path} is not UTF-8: save it as UTF-8") from exc
    except csv.Error as exc:
        raise UserError(
            f"{what} file {path} is not valid CSV ({exc}): fix or regenerate it"
        ) from exc


def write_json(path, data) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    return Path(path)


def read_json(path, what: str):
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} file {path} does not exist")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{what} file {path} is not valid JSON: {exc}") from exc
