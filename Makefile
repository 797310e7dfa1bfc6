# dpo-titles: every entry point a user or CI touches. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TINY_MODEL ?= models/tiny
PIPELINE_YAML ?= pipelines/dpo_titles_pipeline.yaml
# Which registry and tag the compiled pipeline uses: IMAGE_REGISTRY=... IMAGE_TAG=... make compile
IMAGE_REGISTRY ?= ghcr.io/dpo-titles
IMAGE_TAG ?= $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' src/dpo_titles/__init__.py)

.PHONY: help venv tiny-model tiny-model-rebuild run-local compile submit test lint format lock images push clean

help:
	@echo "make run-local   run the whole pipeline here through kfp.local (no GPU, no keys)"
	@echo "make test        run the test suite"
	@echo "make compile     write $(PIPELINE_YAML) for a Kubeflow cluster"
	@echo "make tiny-model  keep $(TINY_MODEL) (committed), or rebuild it if its corpus or builder changed"
	@echo "make tiny-model-rebuild  rebuild $(TINY_MODEL) and say whether it is byte for byte the committed one"
	@echo "make submit      submit the compiled pipeline to \$$KFP_HOST (PARAMS=file.yaml)"
	@echo "make lint        hadolint, workflow schema, kubernetes-validate, ruff"
	@echo "make lock        regenerate requirements.lock (the images install from it)"
	@echo "make images      build both images (docker or podman; IMAGES=base or train for one); make push pushes them"

# The virtual environment, rebuilt when the dependencies change. torch is pinned in
# pyproject.toml so pip takes the CPU wheel on this machine instead of a multi-GB CUDA build.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP)

# models/tiny is committed: built here (6 minutes on 2 cores) and kept while it records the
# inputs it was built from (the corpus's hash, the builder's version, the settings), so that
# run-local on a fresh clone does not wait for it. File times would not tell: a clone's are all
# of the checkout. `make tiny-model-rebuild` rebuilds it in place and shows whether any byte changed.
tiny-model: | $(STAMP)
	$(BIN)/dpo-titles tiny-model --corpus data/title_corpus.csv --out $(TINY_MODEL) --if-changed

tiny-model-rebuild: | $(STAMP)
	$(BIN)/dpo-titles tiny-model --corpus data/title_corpus.csv --out $(TINY_MODEL) --force
	git diff --stat --exit-code -- $(TINY_MODEL) && echo "$(TINY_MODEL): rebuilt, identical to the committed copy"

# RUNNER=docker runs every task in its image (make images IMAGES=base first), as on a cluster.
RUNNER ?= subprocess

run-local: tiny-model
	IMAGE_REGISTRY=$(IMAGE_REGISTRY) IMAGE_TAG=$(IMAGE_TAG) \
		$(BIN)/python -m pipelines.run_local --preset local --runner $(RUNNER) $(ARGS)

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

# Images: `make images` builds both, `make images IMAGES=base` (or train) one, with Docker or
# Podman. BASE_IMAGE, TORCH_INDEX_URL (the CPU image's torch), CUDA_TORCH_INDEX_URL (the CUDA
# image's) and IMAGE_BUILD_FLAGS (e.g. --network host --volume DIR:DIR:ro) pass through; unset,
# the Dockerfiles' defaults apply. images/README.md says what each costs.
CONTAINER ?= $(shell command -v docker || command -v podman)
IMAGES ?= base train
IMAGE_BUILD_FLAGS ?=
BASE_IMAGE ?=
TORCH_INDEX_URL ?=
CUDA_TORCH_INDEX_URL ?=
REVISION := $(shell git rev-parse HEAD 2>/dev/null)
IMAGE_NAME_base := dpo-titles-python
IMAGE_NAME_train := dpo-titles-python-cuda
IMAGE_TORCH_base := $(TORCH_INDEX_URL)
IMAGE_TORCH_train := $(CUDA_TORCH_INDEX_URL)

images:
	@test -n "$(CONTAINER)" || { echo "make images: needs docker or podman"; exit 2; }
	@for image in $(IMAGES); do case $$image in base|train) ;; \
		*) echo "make images: IMAGES takes base and/or train, not $$image"; exit 2;; esac; done
	$(foreach image,$(IMAGES),$(CONTAINER) build $(IMAGE_BUILD_FLAGS) \
		$(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) \
		$(if $(IMAGE_TORCH_$(image)),--build-arg TORCH_INDEX_URL=$(IMAGE_TORCH_$(image))) \
		--build-arg VERSION=$(IMAGE_TAG) --build-arg REVISION=$(REVISION) \
		-f images/$(image).Dockerfile -t $(IMAGE_REGISTRY)/$(IMAGE_NAME_$(image)):$(IMAGE_TAG) . &&) true

push: images
	$(foreach image,$(IMAGES),$(CONTAINER) push $(IMAGE_REGISTRY)/$(IMAGE_NAME_$(image)):$(IMAGE_TAG) &&) true

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf runs $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
