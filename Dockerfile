# redrobe image: the `redrobe` CLI with everything the pipeline, the Prefect flows and an
# MLflow / Prefect server need (deploy/compose.yaml and deploy/k8s run all of them from it).
#
#   docker build -t redrobe:0.1.0 .                      # CPU torch, as `make install` does
#   docker run --rm redrobe:0.1.0 --help                  # entrypoint: redrobe
#   docker run --rm -v "$PWD:/workspace" redrobe:0.1.0 params-check params.yaml
#
# Build args: TORCH_VERSION / TORCH_INDEX_URL pick the torch build (the CPU wheel index by
# default; a CUDA index for GPU nodes), REDROBE_UID the uid of the non-root user (match
# your own when /workspace is a bind mount of your checkout).
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# the PostgreSQL driver of MLflow's backend store (deploy/); not a pipeline dependency
ARG PSYCOPG2_VERSION=2.9.13
ARG REDROBE_UID=1000

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false

WORKDIR /opt/redrobe

# Dependencies in their own layer, so code changes do not reinstall them:
# 1. torch first, from the CPU index: the project's `torch>=2.4` is then already met and
#    no CUDA wheels are pulled (the Makefile does the same on machines without a GPU);
# 2. the dependencies listed in pyproject.toml, every one pinned by requirements.lock;
#    deepspeed is an sdist that builds against the installed torch, hence
#    --no-build-isolation and a compiler, which leaves in the same layer.
# git stays: DVC works inside a git checkout. bubblewrap is the HumanEval sandbox's jail
# (docs/security.md); it needs user namespaces, which Docker's default seccomp profile
# blocks, so run the evaluate stage with a profile that permits them.
COPY pyproject.toml requirements.lock ./
RUN apt-get update \
 && apt-get install -y --no-install-recommends git bubblewrap build-essential \
 && python -m pip install --upgrade pip setuptools wheel \
 && python -m pip install --index-url "$TORCH_INDEX_URL" "torch==$TORCH_VERSION" \
 && python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
        > /tmp/requirements.txt \
 && python -m pip install --no-build-isolation -c requirements.lock -r /tmp/requirements.txt \
        "psycopg2-binary==$PSYCOPG2_VERSION" \
 && apt-get purge -y --auto-remove build-essential \
 && rm -rf /var/lib/apt/lists/* /tmp/requirements.txt

# The project itself (src/ plus dvc.yaml, params.yaml, flows/, tasks/, profiles/...), so
# the image alone can run the pipeline; deploy/ mounts a checkout at /workspace instead.
COPY . .
RUN python -m pip install --no-deps --no-build-isolation . && rm -rf build

# /mlartifacts and /mlflow-auth (MLflow's users) are where compose mounts volumes: a new
# named volume copies the owner of the directory, so the non-root server can write there
RUN useradd --create-home --uid "$REDROBE_UID" redrobe \
 && mkdir -p /workspace /mlartifacts /mlflow-auth \
 && chown redrobe:redrobe /workspace /mlartifacts /mlflow-auth
USER redrobe
WORKDIR /workspace

ENTRYPOINT ["redrobe"]
CMD ["--help"]
