"""Which container images the components run in, fixed when the pipeline is compiled.

`IMAGE_REGISTRY` and `IMAGE_TAG` are read from the environment at import time, so
`IMAGE_REGISTRY=ghcr.io/me IMAGE_TAG=v1 make compile` writes those images into the YAML.
"""

import os

REGISTRY = os.environ.get("IMAGE_REGISTRY", "ghcr.io/dpo-titles").rstrip("/")
TAG = os.environ.get("IMAGE_TAG", "0.1.0")

# "python" in the names keeps kfp.local's SubprocessRunner from warning that the image may not be
# a Python image; both are.
BASE_IMAGE = f"{REGISTRY}/dpo-titles-python:{TAG}"
TRAIN_IMAGE = f"{REGISTRY}/dpo-titles-python-cuda:{TAG}"
