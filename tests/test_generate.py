import pytest

from dpo_titles.generate import clean_title, dedupe, generate_candidates
from dpo_titles.providers import SamplingConfig, make_generator


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ('"Bake Bread Like a Pro"', "Bake Bread Like a Pro"),
        ("1. Bake Bread Like a Pro", "Bake Bread Like a Pro"),
        ("Title: **Bake   Bread**\nsecond line", "Bake Bread"),
        ("- “Bake Bread”", "Bake Bread"),
        ("\n\n  ", ""),
        ("3) 'Why Bread Rises'", "Why Bread Rises"),
    ],
)
def test_clean_title(raw, clean):
    assert clean_title(raw) == clean


def test_dedupe_ignores_case_and_keeps_order():
    assert dedupe(["A b", "a B", "", "c"]) == ["A b", "c"]


def test_hf_generation_is_batched_seeded_and_recorded(tiny_model):
    gen = make_generator("hf", str(tiny_model), batch_size=8)
    ideas = ["Grow tomatoes on a small balcony", "Learn three guitar chords in a week"]
    sampling = SamplingConfig(temperature=1.0, seed=3)
    rows, stats = generate_candidates(ideas, gen, 4, sampling)
    again, _ = generate_candidates(ideas, gen, 4, sampling)
    assert [r["title"] for r in rows] == [r["title"] for r in again]
    assert stats["requested"] == 8
    assert stats["candidates"] + stats["empty_answers"] + stats["duplicate_answers"] == 8
    assert {r["idea"] for r in rows} <= set(ideas)
    for r in rows:
        assert r["provider"] == "hf" and r["model"] == str(tiny_model)
        assert r["temperature"] == 1.0 and r["seed"] == 3
        assert r["title"] == clean_title(r["title"])


def test_unknown_provider_is_a_user_error():
    from dpo_titles.errors import UserError

    with pytest.raises(UserError, match="unknown back end that writes titles 'nope': choose one"):
        make_generator("nope", "x")
    with pytest.raises(UserError, match="needs --model"):
        make_generator("hf", "")
