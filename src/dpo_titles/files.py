"""Reading and writing the stages' CSV and JSON files.

Writers go through `outputs` (nothing of the user's is replaced, the rename is the commit).
Readers check an input's size before reading it, against the limit an entry point sets with
`input_limit` (`--max-input-mb`, the pipeline's `max_input_mb`), so a huge file fails in a second
instead of filling a pod's memory.

CSV cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a
carriage return) are written with a leading `'` (OWASP's rule for CSV injection) and read back
without it, so a person can open any CSV of the tool safely and the stages still see the exact
text. JSONL and the `datasets` files keep the text as it is.
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import UserError
from .outputs import atomic_file
from .settings import check_number

# The default limit on an input file, in MiB: a pod with 2 GB of memory reads a CSV of this size
# comfortably (Python holds each row as a dict of strings, several times the file's size).
DEFAULT_MAX_INPUT_MB = 64.0
MAX_INPUT_MB = 1024.0 * 1024  # 1 TiB: the most the limit may be raised to
_MIB = 1024 * 1024
_input_limit: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "input_limit_mb", default=None
)

_FORMULA_START = "=+-@\t\r"
_ESCAPED = re.compile(r"^'*[=+\-@\t\r]")
_RESTORABLE = re.compile(r"^'+[=+\-@\t\r]")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@contextlib.contextmanager
def input_limit(megabytes: float | None) -> Iterator[None]:
    """Within the block, refuse input files larger than `megabytes` MiB (None: no limit)."""
    if megabytes is not None:
        check_number("max_input_mb", megabytes, low=0, high=MAX_INPUT_MB, low_open=True)
    token = _input_limit.set(megabytes)
    try:
        yield
    finally:
        _input_limit.reset(token)


def input_limit_bytes() -> int | None:
    """The limit set by `input_limit`, in bytes, or None."""
    limit = _input_limit.get()
    return None if limit is None else int(limit * _MIB)


def check_input_size(path: str | os.PathLike, what: str) -> None:
    """Refuse an input over the limit, before a byte of it is read."""
    limit = _input_limit.get()
    if limit is None:
        return
    try:
        size = os.stat(path).st_size
    except OSError:
        return  # the reader says what is wrong with a missing or unreadable file
    if size > limit * _MIB:
        raise UserError(too_large(str(path), size, what))


def too_large(name: str, size: int, what: str) -> str:
    """The one message for an input over the limit."""
    limit = _input_limit.get()
    return (
        f"{what} {name} is {size / _MIB:,.1f} MiB, over the {limit:g} MiB limit for an input: "
        "split it, or raise the limit (--max-input-mb; pipeline: max_input_mb)"
    )


def neutralise_cell(value) -> object:
    """A cell a spreadsheet would read as a formula gets a leading quote; numbers stay as they
    are. `restore_cell` undoes it exactly."""
    if isinstance(value, str) and _ESCAPED.match(value) and not _NUMBER.match(value):
        return "'" + value
    return value


def restore_cell(value: str) -> str:
    """The exact text of a cell written by `neutralise_cell`."""
    if value and value[0] == "'" and _RESTORABLE.match(value):
        return value[1:]
    return value


def write_csv(path, rows: Iterable[dict], fieldnames: list[str], *, force: bool = False) -> Path:
    """Write rows as CSV under the output policy, formula-like cells neutralised."""
    with atomic_file(path, force=force) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerow([neutralise_cell(name) for name in fieldnames])
            writer = csv.DictWriter(fh, fieldnames=fieldnames, extrasaction="ignore")
            for row in rows:
                writer.writerow({k: neutralise_cell(v) for k, v in row.items()})
    return Path(path)


def read_csv(path, required: Iterable[str], what: str) -> list[dict[str, str]]:
    """Read a CSV written by an earlier stage (or by a user) and check its columns."""
    path = Path(path)
    _check_regular_file(path, what)
    check_input_size(path, what)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), [])
            reader = csv.DictReader(fh, fieldnames=[restore_cell(c) for c in header])
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise UserError(
                    f"{what} file {path} lacks column(s) {', '.join(missing)}: "
                    f"found {', '.join(reader.fieldnames or []) or 'none'}"
                )
            return [
                {k: restore_cell(v) if isinstance(v, str) else v for k, v in row.items()}
                for row in reader
            ]
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} file {path} is not UTF-8: save it as UTF-8") from exc
    except csv.Error as exc:
        raise UserError(
            f"{what} file {path} is not valid CSV ({exc}): fix or regenerate it"
        ) from exc


def json_text(data) -> str:
    """The tool's JSON layout: indented, in the given key order, anything else as a string."""
    return json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"


def write_json(path, data, *, force: bool = False) -> Path:
    """Write `data` as JSON under the output policy."""
    with atomic_file(path, force=force) as tmp:
        tmp.write_text(json_text(data), encoding="utf-8")
    return Path(path)


def read_json(path, what: str, expect: type | None = None):
    """Read a JSON file (within the input limit); a missing, broken or (with `expect`, e.g.
    dict) wrongly shaped one is a one-line error that names it."""
    path = Path(path)
    _check_regular_file(path, what)
    check_input_size(path, what)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{what} file {path} is not valid JSON: {exc}") from exc
    except RecursionError:
        raise UserError(f"{what} file {path} is nested too deeply to be read") from None
    except OSError as exc:
        raise UserError(f"cannot read {what} file {path}: {exc.strerror or exc}") from exc
    if expect is not None and not isinstance(data, expect):
        shape = {dict: "an object", list: "a list"}.get(expect, expect.__name__)
        raise UserError(f"{what} file {path} must hold {shape} at the top level")
    return data


def _check_regular_file(path: Path, what: str) -> None:
    if not path.exists():
        raise UserError(f"{what} file {path} does not exist")
    if not path.is_file():
        raise UserError(f"{what} {path} is not a regular file: pass the path of a file")
