# dpo-titles: every entry point a user or CI touches. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TINY_MODEL ?= models/tiny
PIPELINE_YAML ?= pipelines/dpo_titles_pipeline.yaml

.PHONY: help venv tiny-model run-local compile test lint format clean

help:
	@echo "make run-local   run the whole pipeline here through kfp.local (no GPU, no keys)"
	@echo "make test        run the test suite"
	@echo "make compile     write $(PIPELINE_YAML) for a Kubeflow cluster"
	@echo "make tiny-model  build the tiny offline model into $(TINY_MODEL)"
	@echo "make lint        ruff check and format check"

# The virtual environment, rebuilt when the dependencies change. torch is pinned in
# pyproject.toml so pip takes the CPU wheel on this machine instead of a multi-GB CUDA build.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP)

$(TINY_MODEL)/config.json: $(STAMP) data/title_corpus.csv src/dpo_titles/tiny_model.py
	$(BIN)/dpo-titles tiny-model --corpus data/title_corpus.csv --out $(TINY_MODEL)

tiny-model: $(TINY_MODEL)/config.json

run-local: tiny-model
	$(BIN)/python -m pipelines.run_local --preset local $(ARGS)

compile: venv
	$(BIN)/python -m pipelines.compile --out $(PIPELINE_YAML)

test: venv
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf runs $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
