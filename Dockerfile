# syntax=docker/dockerfile:1.7
# The Headwater operator image: `python -m headwater_operator` on a slim Python 3.11.
#
#   docker build -t headwater/operator:0.1.0 .
#
# Two stages: the builder turns sdk/ and operator/ into wheels (it needs pip's build
# backends, the final image does not); the final stage installs only those wheels, with
# no index, so what runs is exactly what was built. dev/ (headwater-dev: the emulator and
# `headwater dev`) is not in the image: nothing here depends on it, and .dockerignore
# keeps it out of the build context. It runs as uid 65532 and writes
# nothing outside /tmp, so the chart can mount the root filesystem read-only.
#
# Base image pinned to a patch release; release builds also pin the digest, e.g.
#   FROM python:3.11.10-slim-bookworm@sha256:<digest from `docker buildx imagetools inspect`>

FROM python:3.11.10-slim-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY sdk/ sdk/
COPY operator/ operator/
# Both local paths on one command line: pip satisfies the operator's `headwater`
# requirement with ./sdk rather than with anything of that name on an index. The SDK's
# `s3` extra (s3fs, pinned with its fsspec) lets the operator delete pruned runs' records
# from an s3:// run store (docs/run-store.md).
RUN python -m pip wheel --wheel-dir /wheels "./sdk[s3]" ./operator

FROM python:3.11.10-slim-bookworm
LABEL org.opencontainers.image.title="headwater-operator" \
      org.opencontainers.image.description="Headwater operator: turns Flow, Deployment, Schedule and FlowRun resources into flow-run pods" \
      org.opencontainers.image.licenses="Apache-2.0"
# No .pyc writes at run time (read-only root filesystem); logs unbuffered for kubectl logs;
# HOME in /tmp because a few libraries create dot-directories under it.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp
RUN groupadd --system --gid 65532 headwater \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin headwater
# The wheels are bind-mounted from the builder, so they never become a layer of this image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-index /wheels/*.whl
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 8081
ENTRYPOINT ["python", "-m", "headwater_operator"]
