"""The output policy's pieces, one at a time (tests/test_safety.py attacks them through the CLI)."""

import pytest

from dpo_titles.errors import UserError
from dpo_titles.outputs import (
    LEDGER,
    MARKER,
    atomic_dir,
    atomic_file,
    check_output,
    remove_output,
    safe_child,
)


def test_a_failed_block_leaves_neither_the_output_nor_a_temporary(tmp_path):
    for writer in (atomic_dir, atomic_file):
        with pytest.raises(RuntimeError), writer(tmp_path / "out") as tmp:
            if writer is atomic_dir:
                (tmp / "half.txt").write_text("half")
            else:
                tmp.write_text("half")
            raise RuntimeError("killed half-way")
        assert list(tmp_path.iterdir()) == []


def test_an_empty_folder_is_replaced_and_its_marker_lists_the_files(tmp_path):
    (tmp_path / "out").mkdir()  # as an orchestrator may create it before the task runs
    with atomic_dir(tmp_path / "out", kind="dataset") as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "a.txt").write_text("a")
    marker = (tmp_path / "out" / MARKER).read_text()
    assert '"kind": "dataset"' in marker and '"sub/a.txt"' in marker


def test_an_old_output_of_ours_is_replaced_whole_with_force(tmp_path):
    for content in ("first", "second"):
        with atomic_dir(tmp_path / "out", force=True) as tmp:
            (tmp / f"{content}.txt").write_text(content)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [MARKER, "second.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing old kept aside


def test_a_failed_replacement_keeps_the_old_output(tmp_path, monkeypatch):
    import dpo_titles.outputs as outputs

    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "old.txt").write_text("old")

    def broken(*paths):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(outputs, "_exchange", broken)
    with pytest.raises(UserError, match="cannot write .*out: Input/output error"):
        with atomic_dir(tmp_path / "out", force=True) as tmp:
            (tmp / "new.txt").write_text("new")
    assert (tmp_path / "out" / "old.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_remove_output_removes_only_an_unchanged_file_of_ours(tmp_path):
    with atomic_file(tmp_path / "ours.txt") as tmp:
        tmp.write_text("ours")
    (tmp_path / "theirs.txt").write_text("theirs")
    assert not remove_output(tmp_path / "theirs.txt")
    assert remove_output(tmp_path / "ours.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == [LEDGER, "theirs.txt"]
    assert "ours.txt" not in (tmp_path / LEDGER).read_text()


def test_check_output_refuses_a_symlink_and_names_it(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UserError, match="symbolic link"):
        check_output(tmp_path / "link", force=True)


@pytest.mark.parametrize("name", ["", "/etc/passwd", "a/../../b", "a/./b", "a//b", "a\\b", "a/.."])
def test_safe_child_refuses_names_that_leave_the_folder(tmp_path, name):
    with pytest.raises(UserError, match="would not stay inside"):
        safe_child(tmp_path, name, f"object {name!r}")


def test_safe_child_keeps_ordinary_names(tmp_path):
    assert safe_child(tmp_path, "a/b c/d.txt", "x") == tmp_path / "a" / "b c" / "d.txt"


def test_a_forced_replacement_swaps_the_folders_in_one_step(tmp_path, monkeypatch):
    import dpo_titles.outputs as outputs

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    if not outputs._exchange(tmp_path / "a", tmp_path / "b"):
        pytest.skip("this filesystem cannot exchange two paths atomically (renameat2)")
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "old.txt").write_text("old")
    real_rename = outputs.os.rename

    def rename(src, dst):
        # Moving the old output aside would leave a moment with no output at all.
        assert str(src) != str(tmp_path / "out"), "the old output was moved aside"
        return real_rename(src, dst)

    monkeypatch.setattr(outputs.os, "rename", rename)
    with atomic_dir(tmp_path / "out", force=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [MARKER, "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "out"]
