# syntax=docker/dockerfile:1
# CPU image `<registry>/dpo-titles-python:<tag>`: preflight, generate, label, prepare, report,
# and evaluation when no GPU is requested. Build from the repository root:
#   docker build -f images/base.Dockerfile -t "$REG/dpo-titles-python:$TAG" .
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# Where torch comes from: the CPU-only build keeps this image small (no CUDA libraries).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    HOME=/home/app \
    HF_HOME=/home/app/.cache/huggingface

# Non-root user, uid 1000 (reused if the base image already has one, as Ubuntu 24.04 does).
# /gcs, /minio and /s3 are where KFP's launcher stages artifacts; a backend that does not mount
# scratch volumes there needs them writable by the task's user.
RUN if ! getent passwd 1000 >/dev/null; then \
        useradd --uid 1000 --user-group --no-create-home --home-dir /home/app --shell /bin/bash app; \
    fi \
    && mkdir -p /home/app "$HF_HOME" /gcs /minio /s3 \
    && chown -R 1000:1000 /home/app /gcs /minio /s3

WORKDIR /app

# Dependencies first, so code changes do not rebuild this layer. torch comes from the PyTorch
# index at the version the lock pins; everything else from the lock, exactly (--no-deps).
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
LABEL org.opencontainers.image.title="dpo-titles-python" \
      org.opencontainers.image.description="dpo-titles CPU image: preflight, generate, label, prepare, report, CPU evaluation" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"

USER 1000:1000
CMD ["dpo-titles", "--help"]
