# syntax=docker/dockerfile:1.7
#
# One image for every role of readmit. The role is the first argument:
#   docker run IMAGE ingest | scorer | web | alerts-consumer | migrate [--seed-demo]
#                    | train [--if-missing] [readmit train options] | readmit <any CLI command>
# (see infra/docker/entrypoint.sh). Stages:
#   assets   npm-pinned static files for the web app (package-lock.json)
#   build    a virtualenv from requirements/runtime.lock, then the package (no [embedded] extra)
#   runtime  slim Python, the venv, non-root user, no compilers  <- the default target
#   train    runtime + a model trained at build time (only built for --target baked)
#   baked    runtime with that model baked in read-only at /opt/readmit/models
# The default image expects the model registry mounted read-only at READMIT_MODEL_DIR
# (/models); build `--target baked` for a self-contained image instead.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
ARG NODE_IMAGE=node:22.12.0-bookworm-slim

# --- static assets (Bootstrap, Chart.js, Swagger UI) from the npm lockfile ----------------
FROM ${NODE_IMAGE} AS assets
WORKDIR /src/alerts_web
COPY alerts_web/package.json alerts_web/package-lock.json ./
COPY alerts_web/scripts/copy-vendor.mjs scripts/copy-vendor.mjs
RUN npm ci --no-audit --no-fund && npm run vendor

# --- build: compilers allowed here, never in the runtime stage --------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/ requirements/
COPY readmit/ readmit/
COPY readmit_core/ readmit_core/
COPY ingest/ ingest/
COPY scorer/ scorer/
COPY model_store/ model_store/
COPY fhir_mappings/ fhir_mappings/
COPY patient_state/ patient_state/
COPY alerts_web/ alerts_web/
COPY --from=assets /src/alerts_web/static/vendor/ alerts_web/static/vendor/
# Production install: the package and its runtime dependencies only, every one at the
# version (and hash) in requirements/runtime.lock; nothing is resolved at build time.
RUN pip install --require-hashes --no-deps -r requirements/build.lock \
 && pip install --require-hashes --no-deps -r requirements/runtime.lock \
 && pip install --no-deps --no-build-isolation . \
 && pip check \
 && python -m compileall -q /opt/venv/lib

# --- runtime --------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="readmit" \
      org.opencontainers.image.description="Streaming 30-day readmission risk over HL7 FHIR R4" \
      org.opencontainers.image.licenses="Apache-2.0"
# libgomp1: OpenMP runtime that LightGBM and XGBoost load (a library, not a compiler).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 readmit \
 && useradd --system --uid 10001 --gid readmit --home-dir /app --shell /usr/sbin/nologin readmit \
 && mkdir -p /app /models /var/lib/readmit \
 && chown readmit:readmit /var/lib/readmit /models
COPY --from=build /opt/venv /opt/venv
# the training data (the code tables ship inside the fhir_mappings package)
COPY data/ /app/data/
COPY --chmod=0755 infra/docker/entrypoint.sh /usr/local/bin/readmit-entrypoint
COPY --chmod=0644 infra/docker/healthcheck.py /usr/local/lib/readmit/healthcheck.py
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    READMIT_EMBEDDED=false \
    READMIT_STATE_DIR=/var/lib/readmit \
    READMIT_MODEL_DIR=/models \
    READMIT_DATA_PATH=/app/data/diabetic_data_dev.csv.gz \
    READMIT_INGEST_HOST=0.0.0.0 \
    READMIT_WEB_HOST=0.0.0.0
WORKDIR /app
USER 10001:10001
EXPOSE 8000 8001 9464
# Role-aware: ingest /healthz, scorer /metrics, web login page; one-shot roles report healthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "/usr/local/lib/readmit/healthcheck.py"]
ENTRYPOINT ["readmit-entrypoint"]
CMD ["--help"]

# --- optional: train at build time and bake the model in (docker build --target baked) ----
FROM runtime AS train
# e.g. --build-arg TRAIN_ARGS="--models lr,xgb,lgbm" (default: every model, best promoted)
ARG TRAIN_ARGS=""
ENV READMIT_MODEL_DIR=/tmp/models
RUN readmit-entrypoint train ${TRAIN_ARGS}

FROM runtime AS baked
USER root
# Owned by root, readable by the app user: the baked registry cannot be modified at run time.
COPY --from=train --chown=root:root /tmp/models /opt/readmit/models
RUN chmod -R a+rX,go-w /opt/readmit/models
USER 10001:10001
ENV READMIT_MODEL_DIR=/opt/readmit/models

# The default target (`docker build .`) is the mounted-model runtime image.
FROM runtime AS default
