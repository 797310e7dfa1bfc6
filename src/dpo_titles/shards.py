"""Fan-out of the API stages over idea shards, and merging their outputs back.

Ideas are dealt round-robin, so shards differ in size by at most one and every idea lands in
exactly one shard.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .errors import UserError
from .files import read_csv, write_csv

MAX_SHARDS = 256


def shard_plan(count: int) -> list[int]:
    if not 1 <= count <= MAX_SHARDS:
        raise UserError(f"shards must be between 1 and {MAX_SHARDS}, got {count}")
    return list(range(count))


def select_shard(items: list, index: int, count: int) -> list:
    if count < 1 or not 0 <= index < count:
        raise UserError(f"shard {index} of {count} does not exist")
    return items[index::count]


def merge_csv(paths: list, out_path) -> int:
    """Concatenate CSV files with the same columns (in the given order); returns the rows."""
    rows: list[dict] = []
    columns: list[str] | None = None
    for path in paths:
        with open(Path(path), newline="", encoding="utf-8") as fh:
            found = csv.DictReader(fh).fieldnames or []
        if columns is None:
            columns = list(found)
        elif found and list(found) != columns:
            raise UserError(f"{path} has columns {found}, expected {columns}")
        # Through the stages' own reader: cells come back exactly, to be neutralised once again.
        rows.extend(read_csv(path, columns, "shard"))
    write_csv(out_path, rows, columns or [])
    return len(rows)
