# syntax=docker/dockerfile:1
# CUDA image `<registry>/dpo-titles-python-cuda:<tag>`: DPO training and GPU evaluation.
# Build from the repository root:
#   docker build -f images/train.Dockerfile -t "$REG/dpo-titles-python-cuda:$TAG" .
#
# The CUDA build of torch brings the CUDA runtime, cuDNN and NCCL as pip packages (nvidia-*), so
# a plain Python base image is enough; only the GPU driver comes from the node (the NVIDIA
# container runtime / GKE device plugin mounts it). BASE_IMAGE may also be an nvidia/cuda
# runtime image that has Python 3.11 (the lock is compiled for Python 3.11).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# Where torch comes from: a CUDA build (cu128 = CUDA 12.8; match the cluster's driver).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    HOME=/home/app \
    HF_HOME=/home/app/.cache/huggingface \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/nvidia/lib \
    PATH=/usr/local/nvidia/bin:${PATH}

# Non-root user, uid 1000 (reused if the base image already has one, as Ubuntu 24.04 does).
# /gcs, /minio and /s3 are where KFP's launcher stages artifacts; a backend that does not mount
# scratch volumes there needs them writable by the task's user.
RUN if ! getent passwd 1000 >/dev/null; then \
        useradd --uid 1000 --user-group --no-create-home --home-dir /home/app --shell /bin/bash app; \
    fi \
    && mkdir -p /home/app "$HF_HOME" /gcs /minio /s3 \
    && chown -R 1000:1000 /home/app /gcs /minio /s3

WORKDIR /app

# Dependencies first, so code changes do not rebuild this layer. torch (with its nvidia-* and
# triton dependencies) comes from the PyTorch index at the version the lock pins; everything
# else from the lock, exactly (--no-deps).
COPY requirements.lock ./
RUN torch_version="$(sed -nE 's/^torch==([^+[:space:]]+).*/\1/p' requirements.lock)" \
    && test -n "$torch_version" \
    && pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" "torch==${torch_version}" \
    && grep -vE '^(torch|triton|nvidia-[a-z0-9-]+)==' requirements.lock > /tmp/requirements.txt \
    && pip install --no-cache-dir --no-deps -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The package itself (dependencies are already in place), then the KFP components and data.
COPY pyproject.toml README.md ./
COPY src/ src/
RUN pip install --no-cache-dir --no-deps . \
    && pip check \
    && rm -rf build src/*.egg-info
COPY components/ components/
COPY pipelines/ pipelines/
COPY data/ data/

# Last, so a new commit rebuilds no layer above.
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/dpo-titles/dpo-titles
LABEL org.opencontainers.image.title="dpo-titles-python-cuda" \
      org.opencontainers.image.description="dpo-titles CUDA image: DPO training and GPU evaluation" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"

USER 1000:1000
CMD ["dpo-titles", "--help"]
