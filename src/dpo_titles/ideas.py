"""Video ideas: the pipeline's input, a CSV with an `idea` column.

Loading validates the file up front, so a typo in a spreadsheet fails in seconds with a message
that names the row, rather than hours later on a GPU. Row numbers are the ones a spreadsheet shows:
the header is row 1 and the first idea is row 2.
"""

from __future__ import annotations

import csv
import io
import os
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dpo_titles.errors import UserError
from dpo_titles.files import check_input_size, restore_cell, write_csv

MAX_IDEA_CHARS = 300
IDEA_COLUMN = "idea"

# Long lists of rows would make the one-line message unreadable; the first few are enough to
# find the pattern.
_MAX_LISTED = 5


@dataclass(frozen=True)
class Idea:
    text: str
    row: int
    extra: dict[str, str] = field(default_factory=dict)


def load_ideas(path: str | os.PathLike) -> list[Idea]:
    """Read and validate an ideas CSV; raise `UserError` with a one-line message on any problem."""
    name = str(path)
    text = _read_text(Path(path), name)
    records = _parse(text, name)
    if not records or not any(_cells_present(r) for r in records):
        raise UserError(f"{name} is empty: no ideas; add a header row `idea` and one idea per row")

    header = [restore_cell(cell.strip()) for cell in records[0]]
    idea_col, extra_cols = _columns(header, name)
    body = records[1:]
    # Editors and spreadsheet exports often leave empty lines at the end; they are not ideas.
    while body and not _cells_present(body[-1]):
        body.pop()
    if not body:
        raise UserError(f"{name} has a header but no ideas; add one idea per row under `idea`")

    ideas: list[Idea] = []
    blank: list[int] = []
    too_long: list[tuple[int, int]] = []
    too_many_cells: list[int] = []
    first_seen: dict[str, int] = {}
    repeats: list[tuple[int, int]] = []
    for row, record in enumerate(body, start=2):
        if any(cell.strip() for cell in record[len(header) :]):
            too_many_cells.append(row)
        idea_text = _trim(restore_cell(record[idea_col].strip())) if idea_col < len(record) else ""
        if not visible(idea_text):
            blank.append(row)
            continue
        if len(idea_text) > MAX_IDEA_CHARS:
            too_long.append((row, len(idea_text)))
        key = " ".join(idea_text.casefold().split())
        if key in first_seen:
            repeats.append((row, first_seen[key]))
        else:
            first_seen[key] = row
        extra = {col: (restore_cell(record[i]) if i < len(record) else "") for i, col in extra_cols}
        ideas.append(Idea(text=idea_text, row=row, extra=extra))

    problems = []
    if too_many_cells:
        problems.append(
            f"{_rows(too_many_cells)} more cells than the header has columns "
            "(an idea that contains a comma must be wrapped in double quotes)"
        )
    if blank:
        problems.append(
            f"{_rows(blank)} a blank idea, or one of invisible characters only "
            "(write one or delete the row)"
        )
    if too_long:
        listed = _listed([f"{r} ({n} characters)" for r, n in too_long])
        subject = f"row {listed} is" if len(too_long) == 1 else f"rows {listed} are"
        problems.append(
            f"{subject} longer than {MAX_IDEA_CHARS} characters (shorten to one sentence)"
        )
    if repeats:
        listed = _listed([f"row {r} repeats row {first}" for r, first in repeats])
        problems.append(f"{listed} (ignoring case and spacing; delete the repeats)")
    if problems:
        raise UserError(f"{name}: " + "; ".join(problems))
    return ideas


def write_ideas(ideas: list[Idea], path: str | os.PathLike, *, force: bool = False) -> None:
    """Write ideas as a CSV that `load_ideas` reads back, under the output policy."""
    columns = [IDEA_COLUMN]
    for idea in ideas:
        for col in idea.extra:
            if col.strip().casefold() == IDEA_COLUMN:
                raise ValueError(f"extra column {col!r} clashes with the idea column")
            if col not in columns:
                columns.append(col)
    rows = ({IDEA_COLUMN: idea.text, **idea.extra} for idea in ideas)
    write_csv(path, rows, columns, force=force)


# Letters and symbols that are drawn as nothing: Hangul fillers and the blank Braille pattern.
_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def visible(text: str) -> bool:
    """True if `text` has a character a person can see: a letter, digit, punctuation or
    symbol. Spaces, zero-width and other format characters and blank fillers alone are not an
    idea."""
    return any(unicodedata.category(c)[0] in "LNPS" and c not in _BLANK for c in text)


def _invisible(char: str) -> bool:
    return char.isspace() or char in _BLANK or unicodedata.category(char) in ("Cf", "Cc", "Zs")


def _trim(text: str) -> str:
    """`text` without spaces and invisible format characters (zero-width space, BOM, ...) at
    either end, which `str.strip` leaves."""
    start, end = 0, len(text)
    while start < end and _invisible(text[start]):
        start += 1
    while end > start and _invisible(text[end - 1]):
        end -= 1
    return text[start:end]


def _read_text(path: Path, name: str) -> str:
    if not path.exists():
        raise UserError(f"ideas file {name} does not exist; check the path")
    if not path.is_file():
        raise UserError(f"ideas file {name} is not a file; pass the path of a CSV file")
    check_input_size(path, "ideas file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read ideas file {name}: {exc.strerror or exc}") from exc
    try:
        # utf-8-sig because Excel's "CSV UTF-8" export starts with a byte-order mark.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(_encoding_message(data, name)) from None


def _encoding_message(data: bytes, name: str) -> str:
    bad_lines = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            bad_lines.append(number)
    # A quoted cell may span several lines, so map physical lines to spreadsheet rows.
    line_to_row = _line_to_row(data.decode("utf-8-sig", errors="replace"))
    if line_to_row:
        rows = sorted({line_to_row.get(line, line) for line in bad_lines})
        where = _rows(rows)
    else:
        where = ("line " if len(bad_lines) == 1 else "lines ") + _listed(map(str, bad_lines))
        where += " has" if len(bad_lines) == 1 else " have"
    return (
        f"{name} is not UTF-8 text ({where} characters in another encoding); "
        "save it as UTF-8 (in a spreadsheet: Save As, CSV UTF-8)"
    )


def _line_to_row(text: str) -> dict[int, int]:
    reader = csv.reader(io.StringIO(text, newline=""))
    mapping: dict[int, int] = {}
    last_line = 0
    try:
        for row, _ in enumerate(reader, start=1):
            for line in range(last_line + 1, reader.line_num + 1):
                mapping[line] = row
            last_line = reader.line_num
    except csv.Error:
        return {}
    return mapping


def _parse(text: str, name: str) -> list[list[str]]:
    # strict=True so that a stray quote fails loudly instead of silently merging cells or rows.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[list[str]] = []
    try:
        for record in reader:
            records.append(record)
    except csv.Error as exc:
        row = len(records) + 1
        if "unexpected end of data" in str(exc):
            raise UserError(
                f"{name}: row {row} opens a double quote that is never closed; "
                "close it, or remove it if it is not meant to wrap the cell"
            ) from None
        raise UserError(
            f"{name}: row {row} (line {reader.line_num}) is not valid CSV ({exc}); "
            'wrap the cell in double quotes and double any quote inside it ("")'
        ) from None
    return records


def _columns(header: list[str], name: str) -> tuple[int, list[tuple[int, str]]]:
    found = ", ".join(repr(c) for c in header if c) or "none"
    idea_cols = [i for i, col in enumerate(header) if col.casefold() == IDEA_COLUMN]
    if not idea_cols:
        raise UserError(
            f"{name} has no `{IDEA_COLUMN}` column (columns found: {found}); "
            f"name the column that holds the ideas `{IDEA_COLUMN}` in the first row"
        )
    if len(idea_cols) > 1:
        numbers = " and ".join(str(i + 1) for i in idea_cols)
        raise UserError(
            f"{name} has more than one `{IDEA_COLUMN}` column (columns {numbers}); "
            "rename or delete all but one"
        )
    extra: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for i, col in enumerate(header):
        # Spreadsheet exports pad the header with unnamed columns; there is nothing to keep.
        if i == idea_cols[0] or not col:
            continue
        if col in seen:
            raise UserError(
                f"{name}: columns {seen[col] + 1} and {i + 1} are both named {col!r}; "
                "rename one of them"
            )
        seen[col] = i
        extra.append((i, col))
    return idea_cols[0], extra


def _cells_present(record: list[str]) -> bool:
    return any(cell.strip() for cell in record)


def _listed(items: Iterable[str]) -> str:
    items = list(items)
    shown = ", ".join(items[:_MAX_LISTED])
    if len(items) > _MAX_LISTED:
        shown += f" and {len(items) - _MAX_LISTED} more"
    return shown


def _rows(rows: list[int], verb: str = "has") -> str:
    """'row 4 has' or 'rows 4, 7 have': the subject and verb of a problem, agreeing in number."""
    listed = _listed(str(r) for r in rows)
    if len(rows) == 1:
        return f"row {listed} {verb}"
    plural = {"has": "have", "is": "are"}[verb]
    return f"rows {listed} {plural}"
