"""Shared fixtures: a tiny model built here (never downloaded) and small input files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "data" / "title_corpus.csv"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A smaller, quicker cousin of `make tiny-model`, trained on part of the bundled corpus."""
    from dpo_titles.tiny_model import TinyModelConfig, build_tiny_model

    root = tmp_path_factory.mktemp("tiny")
    with open(CORPUS, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:300]
    corpus = root / "corpus.csv"
    with open(corpus, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["idea", "title"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    config = TinyModelConfig(
        vocab_size=1024,
        hidden_size=64,
        intermediate_size=128,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        epochs=3,
        batch_size=32,
        learning_rate=5e-3,
        seed=7,
    )
    return build_tiny_model(corpus, root / "model", config)


@pytest.fixture()
def ideas_csv(tmp_path) -> Path:
    """Twelve ideas from the bundled file, enough for a split by idea."""
    with open(REPO / "data" / "ideas.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:12]
    path = tmp_path / "ideas.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["idea"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def preflight_arguments(**given) -> dict:
    """Every parameter of the preflight component, at the pipeline's own defaults (the one
    definition of them), then `given`: as the pipeline would call it."""
    from components.preflight import preflight
    from pipelines.pipeline import dpo_titles_pipeline

    defaults = dpo_titles_pipeline.component_spec.inputs
    wanted = preflight.component_spec.inputs
    args = {name: defaults[name].default for name in wanted if name in defaults}
    return {**args, **given}
