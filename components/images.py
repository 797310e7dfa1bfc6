"""Which container images the components run in, fixed when the pipeline is compiled.

`IMAGE_REGISTRY` and `IMAGE_TAG` are read from the environment at import time, so
`IMAGE_REGISTRY=ghcr.io/me IMAGE_TAG=v1 make compile` writes those images into the YAML. The
tag defaults to the package's version: the tag the release workflow pushes for that version.
`DPO_TITLES_TRAIN_IMAGE` names another image for the GPU tasks (a CUDA image of your own);
`make run-local RUNNER=docker` runs them in the CPU image when the CUDA one is not built.
"""

import os

from dpo_titles import __version__

REGISTRY = os.environ.get("IMAGE_REGISTRY", "ghcr.io/dpo-titles").rstrip("/")
TAG = os.environ.get("IMAGE_TAG") or __version__
TRAIN_IMAGE_ENV = "DPO_TITLES_TRAIN_IMAGE"

# "python" in the names keeps kfp.local's SubprocessRunner from warning that the image may not be
# a Python image; both are.
BASE_IMAGE = f"{REGISTRY}/dpo-titles-python:{TAG}"
CUDA_IMAGE = f"{REGISTRY}/dpo-titles-python-cuda:{TAG}"
# What the GPU tasks (train, evaluate) run in.
TRAIN_IMAGE = os.environ.get(TRAIN_IMAGE_ENV) or CUDA_IMAGE
