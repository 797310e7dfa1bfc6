# dpo-titles: every entry point a user or CI touches. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TINY_MODEL ?= models/tiny
PIPELINE_YAML ?= pipelines/dpo_titles_pipeline.yaml
# Which registry and tag the compiled pipeline uses: IMAGE_REGISTRY=... IMAGE_TAG=... make compile
IMAGE_REGISTRY ?= ghcr.io/dpo-titles
IMAGE_TAG ?= 0.1.0

.PHONY: help venv tiny-model run-local compile submit test lint format lock images push clean

help:
	@echo "make run-local   run the whole pipeline here through kfp.local (no GPU, no keys)"
	@echo "make test        run the test suite"
	@echo "make compile     write $(PIPELINE_YAML) for a Kubeflow cluster"
	@echo "make tiny-model  build the tiny offline model into $(TINY_MODEL)"
	@echo "make submit      submit the compiled pipeline to \$$KFP_HOST (PARAMS=file.yaml)"
	@echo "make lint        hadolint, workflow schema, kubernetes-validate, ruff"
	@echo "make lock        regenerate requirements.lock (the images install from it)"
	@echo "make images      build both images (docker or podman); make push pushes them"

# The virtual environment, rebuilt when the dependencies change. torch is pinned in
# pyproject.toml so pip takes the CPU wheel on this machine instead of a multi-GB CUDA build.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP)

# Order-only on the venv: reinstalling packages does not rebuild the model; the corpus and the
# builder do.
$(TINY_MODEL)/config.json: data/title_corpus.csv src/dpo_titles/tiny_model.py | $(STAMP)
	$(BIN)/dpo-titles tiny-model --corpus data/title_corpus.csv --out $(TINY_MODEL) --force

tiny-model: $(TINY_MODEL)/config.json

run-local: tiny-model
	$(BIN)/python -m pipelines.run_local --preset local $(ARGS)

compile: venv
	IMAGE_REGISTRY=$(IMAGE_REGISTRY) IMAGE_TAG=$(IMAGE_TAG) \
		$(BIN)/python -m pipelines.compile --out $(PIPELINE_YAML)

submit: venv
	$(BIN)/python -m pipelines.submit --pipeline $(PIPELINE_YAML) $(if $(PARAMS),--params $(PARAMS)) $(ARGS)

test: lint
	$(BIN)/python -m pytest

lint: venv
	VENV=$(VENV) bash lint/run.sh

lock: venv
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-find-links --no-emit-index-url \
		-o requirements.lock pyproject.toml

CONTAINER ?= $(shell command -v docker || command -v podman)

images:
	@test -n "$(CONTAINER)" || { echo "make images: needs docker or podman"; exit 2; }
	$(CONTAINER) build -f images/base.Dockerfile -t $(IMAGE_REGISTRY)/dpo-titles-python:$(IMAGE_TAG) .
	$(CONTAINER) build -f images/train.Dockerfile -t $(IMAGE_REGISTRY)/dpo-titles-python-cuda:$(IMAGE_TAG) .

push: images
	$(CONTAINER) push $(IMAGE_REGISTRY)/dpo-titles-python:$(IMAGE_TAG)
	$(CONTAINER) push $(IMAGE_REGISTRY)/dpo-titles-python-cuda:$(IMAGE_TAG)

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf runs $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
