#!/usr/bin/env bash
# The whole GPU measurement in one call of under 8 minutes (H100): the SAM 2 engine grid
# (1/16/64/128 objects, eager vs compiled vs sam2's reference), e2e at 720p and 1080p with
# video + JSON next to the engine alone and the GSAM2 rule, memory at frame 100 vs 1000.
# One JSON (gpu_check.json) and a log into --out (default $OUT), a short table printed last.
# What each step measures: bench/gpu_check.py; how to run it: bench/RESULTS.md ("GPU check").
#
#   bash bench/gpu_prepare.sh                # here, once: wheels into .whl/, clip + YOLOX into .gpu/
#   bash bench/gpu_check.sh                  # on the GPU machine (the command gpu_prepare.sh prints)
#   bash bench/gpu_check.sh --smoke --out D  # the same code on the CPU at tiny sizes, in seconds (CI)
#
# Python: $PYTHON, else python3. promptrack runs from this tree (an import shim maps
# promptrack.* onto pipeline/, trackers/, configs/), so the tree that travels is what runs.
set -u
STARTED=$(date +%s.%N)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
SMOKE=0
for arg in "$@"; do [ "$arg" = "--smoke" ] && SMOKE=1; done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
SHIM=$WORK/shim/promptrack
mkdir -p "$SHIM"
cp "$ROOT/promptrack/__init__.py" "$SHIM/"
for sub in pipeline trackers configs; do ln -s "$ROOT/$sub" "$SHIM/$sub"; done
SITE=
if [ "$SMOKE" = 0 ] && ls "$ROOT"/.whl/*.whl >/dev/null 2>&1; then
    # The wheels bench/gpu_prepare.sh carried: packages the GPU machine lacks, no index there.
    SITE=$WORK/site
    echo "installing $(ls "$ROOT"/.whl/*.whl | wc -l) carried wheels"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
        "$ROOT"/.whl/*.whl || echo "gpu_check: installing the carried wheels failed (steps needing them will fail)"
fi
export PYTHONPATH="$WORK/shim${SITE:+:$SITE}${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TORCHINDUCTOR_CACHE_DIR=$WORK/inductor
# Tiny smoke workloads gain nothing from threads, and spinning ones cost a shared CPU a lot.
[ "$SMOKE" = 1 ] && export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
if [ "$SMOKE" = 0 ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
    "$PY" -c "import torch, sam2, supervision, av, promptrack.pipeline.loop as l
print('imports ok: torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
        || echo "gpu_check: an import failed (see above); the steps will report it"
fi
# The steps stop at their budgets and the deadline (bench/gpu_check.py); this is the backstop.
LIMIT=475
[ "$SMOKE" = 1 ] && LIMIT=1230
timeout -k 5 $LIMIT "$PY" "$ROOT/bench/gpu_check.py" --work "$WORK" --started "$STARTED" "$@"
rc=$?
rm -rf "$WORK"
exit $rc
