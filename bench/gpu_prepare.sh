#!/usr/bin/env bash
# Prepares bench/gpu_check.sh's one device call, HERE (no GPU needed; PyPI reachable):
#   .whl/  the cp312 manylinux wheels of what the GPU machine lacks (its image has Python 3.12,
#          torch, torchvision, transformers, opencv-headless, onnxruntime, numpy, scipy, huggingface_hub),
#          sam2 / iopath / antlr4 built here as pure-Python wheels; decord is left out (PyAV decodes);
#   .gpu/  the cars clip (1080p) and YOLOX-Nano from the shared assets.
# Both folders are git-ignored and travel as `carry`. promptrack itself runs from the tree, which
# travels anyway. Prints the size against the 64 MiB limit and the exact device call to make.
#
#   PYTHON=/path/to/venv/bin/python bash bench/gpu_prepare.sh
#
# PYTHON needs pip, setuptools, wheel and torch (sam2's setup.py imports it): the project's .venv.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
ASSETS=${ASSETS:-$ROOT/../shared/assets}
[ -d "$ASSETS" ] || ASSETS=/work/shared/assets
LIMIT_MIB=64

# One version of each (two stop the whole install there). Binary wheels for CPython 3.12, x86-64:
BINARY="supervision==0.31.2 pydeprecate==0.13.0 defusedxml==0.7.1 av==18.1.0 pycocotools==2.0.11
        omegaconf==2.3.1 hydra-core==1.3.8"
# sdists only (or a CUDA build we do not want): built here without their extensions.
BUILT="sam2==1.1.0 iopath==0.1.10 antlr4-python3-runtime==4.9.3"

rm -rf .whl
mkdir -p .whl .gpu
echo "downloading wheels for the GPU machine (cp312, manylinux x86-64) ..."
# shellcheck disable=SC2086
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl $BINARY
echo "building pure-Python wheels: $BUILT ..."
# shellcheck disable=SC2086
SAM2_BUILD_CUDA=0 "$PY" -m pip wheel -q --no-deps --no-build-isolation --no-binary=:all: -w .whl $BUILT
if unzip -l .whl/sam2-*.whl | grep -q '\.so$'; then
    echo "gpu_prepare: the sam2 wheel has a compiled extension (built for this machine's Python): rebuild with SAM2_BUILD_CUDA=0" >&2
    exit 1
fi
for name in cars_1080p.mp4:videos yolox_nano.onnx:models; do
    file=${name%%:*}
    cp -f "$ASSETS/${name#*:}/$file" .gpu/
done

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
bytes() { find "$@" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
# What travels: tracked files and untracked ones git does not ignore, plus the carried folders.
tree=$(git ls-files -z -co --exclude-standard | xargs -0 -r stat -L -c %s 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
whl=$(bytes .whl)
gpu=$(bytes .gpu)
total=$((tree + whl + gpu))
echo
ls -l .whl .gpu | sed 's/^/  /'
echo "size: tree $(mib "$tree") MiB + .whl $(mib "$whl") MiB + .gpu $(mib "$gpu") MiB = $(mib "$total") MiB of $LIMIT_MIB MiB"
if [ "$total" -ge $((LIMIT_MIB * 1048576)) ]; then
    echo "gpu_prepare: over the $LIMIT_MIB MiB limit: the device call would be refused" >&2
    exit 1
fi
commit=$(git describe --always --dirty 2>/dev/null || echo unknown)
cat <<EOF

The device call (one run, about 8 minutes; the script stops itself at its deadline):
  run(
    command='set -o pipefail; GPU_CHECK_COMMIT=$commit bash bench/gpu_check.sh --out "\$OUT" 2>&1 | tee "\$OUT/gpu_check_stdout.log"',
    carry=[".whl", ".gpu"],
    timeout_s=540,
  )
Then: give_back, and copy the table it prints last (and gpu_check.json from files_at) into bench/RESULTS.md with the card.
EOF
