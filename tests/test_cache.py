"""The response cache and the cache volume."""

import os

from dpo_titles.cache import ResponseCache, use_cache_volume


def test_cache_volume_points_hf_home_and_responses_at_the_mount(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", "/somewhere/else")
    responses = use_cache_volume(str(tmp_path))
    assert os.environ["HF_HOME"] == str(tmp_path / "huggingface")
    assert responses == str(tmp_path / "responses")
    cache = ResponseCache(responses)
    cache.put("ab" * 32, {"text": "hi"})
    assert ResponseCache(responses).get("ab" * 32) == {"text": "hi"}


def test_no_volume_means_no_cache_and_hf_home_untouched(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", "/somewhere/else")
    assert use_cache_volume("") is None
    assert use_cache_volume(str(tmp_path / "not-mounted")) is None
    assert os.environ["HF_HOME"] == "/somewhere/else"
    assert not (tmp_path / "not-mounted").exists()
