import pytest

from dpo_titles.errors import UserError
from dpo_titles.shards import merge_csv, select_shard, shard_plan


def test_every_idea_lands_in_exactly_one_shard():
    ideas = list(range(10))
    shards = [select_shard(ideas, i, 4) for i in shard_plan(4)]
    assert sorted(x for s in shards for x in s) == ideas
    assert [len(s) for s in shards] == [3, 3, 2, 2]
    assert select_shard(ideas, 0, 1) == ideas


def test_bad_shard_settings():
    with pytest.raises(UserError):
        shard_plan(0)
    with pytest.raises(UserError):
        select_shard([1], 3, 2)


def test_merge_keeps_every_row_and_refuses_mixed_columns(tmp_path):
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    a.write_text("idea,title\nx,1\n")
    b.write_text("idea,title\n")
    c.write_text("idea,title\ny,2\nz,3\n")
    assert merge_csv([a, b, c], tmp_path / "m.csv") == 3
    assert (tmp_path / "m.csv").read_text().splitlines() == ["idea,title", "x,1", "y,2", "z,3"]
    (tmp_path / "d.csv").write_text("other\nq\n")
    with pytest.raises(UserError, match="columns"):
        merge_csv([a, tmp_path / "d.csv"], tmp_path / "m2.csv")
