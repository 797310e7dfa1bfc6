import csv
from collections import Counter
from pathlib import Path

import pytest

from dpo_titles.errors import UserError
from dpo_titles.ideas import MAX_IDEA_CHARS, Idea, load_ideas, write_ideas
from dpo_titles.outputs import LEDGER
from dpo_titles.prompts import MAX_TITLE_CHARS, MIN_TITLE_CHARS

REPO = Path(__file__).parents[1]


def write(tmp_path: Path, content: str | bytes, name: str = "ideas.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def error_for(path: Path) -> str:
    with pytest.raises(UserError) as info:
        load_ideas(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_loads_ideas_with_spreadsheet_row_numbers(tmp_path):
    path = write(tmp_path, "idea\n  Bake bread at home  \nFix a bike chain\n")
    ideas = load_ideas(path)
    assert [(i.text, i.row) for i in ideas] == [("Bake bread at home", 2), ("Fix a bike chain", 3)]


def test_header_matched_ignoring_case_and_spaces(tmp_path):
    path = write(tmp_path, " IDEA ,notes\nBake bread,x\n")
    assert [i.text for i in load_ideas(path)] == ["Bake bread"]


def test_extra_columns_are_kept(tmp_path):
    path = write(tmp_path, "category,idea,priority\ncooking,Bake bread,high\ntravel,Visit Rome,\n")
    ideas = load_ideas(path)
    assert ideas[0].extra == {"category": "cooking", "priority": "high"}
    assert ideas[1].extra == {"category": "travel", "priority": ""}


def test_short_rows_fill_missing_extra_cells(tmp_path):
    path = write(tmp_path, "idea,category\nBake bread\n")
    assert load_ideas(path)[0].extra == {"category": ""}


def test_utf8_bom_is_accepted(tmp_path):
    path = write(tmp_path, "\ufeffidea\nCrème brûlée at home\n".encode())
    assert [i.text for i in load_ideas(path)] == ["Crème brûlée at home"]


def test_quoted_multiline_idea_counts_as_one_row(tmp_path):
    path = write(tmp_path, 'idea\n"Bake bread,\nthe slow way"\nVisit Rome\n')
    ideas = load_ideas(path)
    assert ideas[0].text == "Bake bread,\nthe slow way"
    assert ideas[1].row == 3


def test_trailing_empty_lines_are_ignored(tmp_path):
    path = write(tmp_path, "idea,category\nBake bread,cooking\n\n,\n")
    assert len(load_ideas(path)) == 1


def test_missing_file(tmp_path):
    message = error_for(tmp_path / "nope.csv")
    assert "nope.csv" in message and "does not exist" in message


def test_directory_is_not_a_file(tmp_path):
    message = error_for(tmp_path)
    assert str(tmp_path) in message and "not a file" in message


@pytest.mark.parametrize("content", ["", "\n\n", "idea\n", "idea,category\n\n"])
def test_empty_file_or_header_only(tmp_path, content):
    message = error_for(write(tmp_path, content))
    assert "ideas.csv" in message and "no ideas" in message


def test_missing_idea_column_lists_columns_found(tmp_path):
    message = error_for(write(tmp_path, "title,topic\nx,y\n"))
    assert "no `idea` column" in message
    assert "'title'" in message and "'topic'" in message


def test_two_idea_columns(tmp_path):
    message = error_for(write(tmp_path, "Idea,idea\na,b\n"))
    assert "more than one `idea` column" in message and "columns 1 and 2" in message


def test_duplicate_extra_column_names(tmp_path):
    message = error_for(write(tmp_path, "idea,note,note\na,b,c\n"))
    assert "columns 2 and 3" in message and "'note'" in message


def test_bad_encoding_names_the_row(tmp_path):
    content = "idea\nBake bread\nCrème brûlée at home\nVisit Rome\n".encode("latin-1")
    message = error_for(write(tmp_path, content))
    assert "ideas.csv" in message
    assert "row 3 has" in message
    assert "save it as UTF-8" in message


def test_bad_encoding_after_multiline_cell_uses_rows_not_lines(tmp_path):
    content = 'idea\n"one\ntwo"\nok\ncaf\xe9\n'.encode("latin-1")
    message = error_for(write(tmp_path, content))
    assert "row 4 has" in message


def test_blank_ideas_are_reported_together(tmp_path):
    path = write(tmp_path, "idea,category\nBake bread,a\n ,b\nVisit Rome,c\n,d\n")
    message = error_for(path)
    assert "rows 3, 5 have a blank idea" in message


def test_many_blank_ideas_are_summarised(tmp_path):
    path = write(tmp_path, "idea,n\n" + "".join(f",{n}\n" for n in range(8)) + "ok,x\n")
    message = error_for(path)
    assert "rows 2, 3, 4, 5, 6 and 3 more have a blank idea" in message


def test_overlong_ideas(tmp_path):
    long_idea = "x" * (MAX_IDEA_CHARS + 1)
    path = write(tmp_path, f"idea\nshort one\n{long_idea}\n{'x' * MAX_IDEA_CHARS}\n")
    message = error_for(path)
    assert f"row 3 ({MAX_IDEA_CHARS + 1} characters) is longer than {MAX_IDEA_CHARS}" in message


def test_duplicates_ignore_case_and_spacing(tmp_path):
    path = write(tmp_path, "idea\nBake bread\nVisit Rome\nFix a bike\nbake   BREAD\nVisit Rome \n")
    message = error_for(path)
    assert "row 5 repeats row 2" in message and "row 6 repeats row 3" in message


def test_all_kinds_of_row_problem_in_one_message(tmp_path):
    path = write(tmp_path, f"idea\nBake bread\n\n{'y' * 400}\nbake bread\n")
    message = error_for(path)
    assert "row 3 has a blank idea" in message
    assert "row 4 (400 characters)" in message
    assert "row 5 repeats row 2" in message


def test_unquoted_comma_gives_extra_cells(tmp_path):
    path = write(tmp_path, "idea\nBake bread\nPasta, the Italian way\n")
    message = error_for(path)
    assert "row 3 has more cells" in message and "double quotes" in message


def test_unclosed_quote(tmp_path):
    message = error_for(write(tmp_path, 'idea\nBake bread\n"Visit Rome\nFix a bike\n'))
    assert "row 3 opens a double quote that is never closed" in message


def test_csv_error_names_row_and_line(tmp_path):
    message = error_for(write(tmp_path, 'idea\nBake bread\n"Visit" Rome\n'))
    assert "row 3 (line 3) is not valid CSV" in message


def test_write_ideas_round_trip(tmp_path):
    ideas = [
        Idea("Bake bread, slowly", 2, {"category": "cooking", "note": 'say "hi"'}),
        Idea("Crème brûlée\nat home", 3, {"category": "cooking", "note": ""}),
        Idea("Visit Rome", 4, {"category": "travel", "note": "x"}),
    ]
    path = tmp_path / "out" / "ideas.csv"
    write_ideas(ideas, path)
    assert load_ideas(path) == ideas
    assert path.read_text(encoding="utf-8").splitlines()[0] == "idea,category,note"
    # Nothing but the file and its folder's ledger of what dpo-titles wrote there.
    assert sorted(p.name for p in path.parent.iterdir()) == [LEDGER, "ideas.csv"]


def test_write_ideas_never_replaces_a_users_file(tmp_path):
    path = tmp_path / "ideas.csv"
    path.write_text("old", encoding="utf-8")
    with pytest.raises(UserError, match="not written by dpo-titles"):
        write_ideas([Idea("Visit Rome", 2, {})], path, force=True)
    assert path.read_text(encoding="utf-8") == "old"


def test_write_ideas_replaces_its_own_file_only_with_force(tmp_path):
    path = tmp_path / "ideas.csv"
    write_ideas([Idea("Visit Rome", 2, {})], path)
    with pytest.raises(UserError, match="--force"):
        write_ideas([Idea("Visit Paris", 2, {})], path)
    write_ideas([Idea("Visit Paris", 2, {})], path, force=True)
    assert [i.text for i in load_ideas(path)] == ["Visit Paris"]
    # Once a person edits it, it is theirs: even --force leaves it alone.
    path.write_text(path.read_text(encoding="utf-8") + "Visit Oslo\n", encoding="utf-8")
    with pytest.raises(UserError, match="changed after dpo-titles wrote it"):
        write_ideas([Idea("Visit Rome", 2, {})], path, force=True)
    assert "Visit Oslo" in path.read_text(encoding="utf-8")


def test_ideas_of_invisible_characters_only_are_refused(tmp_path):
    invisible = "\u200b\u200c\u2060\ufeff"
    message = error_for(write(tmp_path, f"idea\nBake bread\n{invisible}\n \u200b \n"))
    assert "rows 3, 4 have a blank idea, or one of invisible characters only" in message
    # Invisible characters around a real idea are trimmed, not kept in the text.
    path = write(tmp_path, "idea\n\u200bBake bread\u200b\n")
    assert [i.text for i in load_ideas(path)] == ["Bake bread"]


def test_formula_like_ideas_are_neutralised_in_the_csv_and_read_back_exactly(tmp_path):
    texts = ['=HYPERLINK("http://x")', "+1 trick", "-5 mistakes", "@home", "'=quoted", "'plain"]
    path = tmp_path / "ideas.csv"
    write_ideas([Idea(t, i + 2, {"n": "-3"}) for i, t in enumerate(texts)], path)
    cells = [row[0] for row in csv.reader(path.read_text(encoding="utf-8").splitlines()[1:])]
    # A spreadsheet shows these as text: every one that starts like a formula has a quote.
    assert cells == [
        '\'=HYPERLINK("http://x")',
        "'+1 trick",
        "'-5 mistakes",
        "'@home",
        "''=quoted",
        "'plain",
    ]
    loaded = load_ideas(path)
    assert [i.text for i in loaded] == texts
    assert {i.extra["n"] for i in loaded} == {"-3"}  # a number is not a formula


def test_bundled_ideas_load():
    ideas = load_ideas(REPO / "data" / "ideas.csv")
    assert len(ideas) == 60
    assert all(8 <= len(i.text.split()) <= 25 for i in ideas)
    assert len(Counter(i.extra["category"] for i in ideas)) == 12


def test_bundled_title_corpus_matches_its_flaw_column():
    with open(REPO / "data" / "title_corpus.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and list(rows[0]) == ["idea", "title", "flaw"]
    flaws = Counter(row["flaw"] for row in rows)
    assert set(flaws) == {"", "short", "long", "shouting", "filler", "offtopic"}
    for row in rows:
        n = len(row["title"])
        if row["flaw"] == "short":
            assert n < MIN_TITLE_CHARS, row
        elif row["flaw"] == "long":
            assert n > MAX_TITLE_CHARS, row
        else:
            assert MIN_TITLE_CHARS <= n <= MAX_TITLE_CHARS, row

    corpus_ideas = {" ".join(row["idea"].casefold().split()) for row in rows}
    bundled = {" ".join(i.text.casefold().split()) for i in load_ideas(REPO / "data/ideas.csv")}
    assert not corpus_ideas & bundled
