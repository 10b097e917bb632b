#!/usr/bin/env bash
# The GPU checks in one unattended command, under 10 minutes on one GPU:
#
#     benchmarks/gpu_check.sh        # writes benchmarks/results/gpu_check.json
#
# Runs the scripts in benchmarks/gpu/ one after another, each under its own time limit
# (a check that fails, crashes or runs out of time is recorded as failed and the next one
# runs): semantic-dedup encoding on the GPU vs the CPU (encode), bf16 pretraining MFU
# (pretrain_mfu), DeepSpeed ZeRO-2 over NCCL on all visible GPUs (zero2), and QLoRA
# through redrobe.lora and through the lora stage (qlora_library, qlora_stage). Then
# benchmarks/gpu/report.py writes the JSON (GPU, versions, per check: what ran, the
# figures, the criteria, passed) and benchmarks/render_docs.py refreshes docs/performance.md.
#
# Exit codes: 0 every check passed, 1 some failed (see the JSON), 2 no CUDA GPU (nothing
# runs). The [gpu] extra (bitsandbytes) is pip-installed into the project's venv only if
# missing; nothing else is downloaded (models are read offline, HF_HUB_OFFLINE=1).
# Environment: PYTHON (default .venv/bin/python), GPU_CHECK_OUT (the JSON's path).

set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

PY=${PYTHON:-.venv/bin/python}
OUT=${GPU_CHECK_OUT:-benchmarks/results/gpu_check.json}
GPU=benchmarks/gpu
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 REDROBE_TRACKING=off TOKENIZERS_PARALLELISM=false

die() {
    echo "gpu_check: error: $*" >&2
    exit 2
}

[ -x "$PY" ] || die "no Python at $PY: create the project's venv first, or set PYTHON"
gpus=$("$PY" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)') \
    || die "torch does not import with $PY"
if ! [ "$gpus" -ge 1 ] 2>/dev/null; then
    build=$("$PY" -c 'import torch; print(f"torch {torch.__version__}, CUDA build {torch.version.cuda}")')
    die "no CUDA GPU visible to torch ($build); run this on a machine with an NVIDIA GPU"
fi

# The [gpu] extra's requirements, read from pyproject.toml so they are written down once.
if ! "$PY" -c 'import bitsandbytes' 2>/dev/null; then
    extra=$("$PY" -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))
print(" ".join(p["project"]["optional-dependencies"]["gpu"]))')
    echo "gpu_check: installing the [gpu] extra into $PY's environment: $extra"
    # shellcheck disable=SC2086  # one word per requirement
    timeout 60 "$PY" -m pip install --quiet $extra \
        || echo "gpu_check: could not install $extra: the QLoRA checks will fail" >&2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# check NAME LIMIT_S COMMAND...: run it under the limit (timeout signals its whole
# process group, so launcher workers stop too) and record "exit_code seconds limit".
check() {
    local name=$1 limit=$2 start=$SECONDS rc
    shift 2
    echo "gpu_check: $name (at most ${limit} s)"
    timeout --kill-after=15 "$limit" "$@" >"$WORK/$name.log" 2>&1
    rc=$?
    echo "$rc $((SECONDS - start)) $limit" >"$WORK/$name.status"
    tail -n 2 "$WORK/$name.log"
}

check encode 75 "$PY" $GPU/encode.py --device cuda --out "$WORK/encode.json"
check pretrain_mfu 180 "$PY" $GPU/pretrain_mfu.py --device cuda --out "$WORK/pretrain_mfu.json"
check zero2 100 "$PY" -m torch.distributed.run --standalone --nproc-per-node "$gpus" \
    $GPU/zero2.py --device cuda --out "$WORK/zero2.json"
check qlora_library 70 "$PY" $GPU/qlora_library.py --device cuda --out "$WORK/qlora_library.json"
check qlora_stage 70 "$PY" $GPU/qlora_stage.py --device cuda --out "$WORK/qlora_stage.json"

"$PY" $GPU/report.py --parts "$WORK" --out "$OUT"
status=$?
"$PY" benchmarks/render_docs.py || echo "gpu_check: docs/performance.md was not re-rendered" >&2
exit $status
