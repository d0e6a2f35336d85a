#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in ./.venv with the pinned stack:
# torch 2.14.1 + torchvision 0.29.1, mmengine 0.10.7, mmcv 2.1.0 (built from source with its
# CPU ops), mmpretrain 1.2.0, mmdet 3.3.0, timm 1.0.31 and transformers 4.50.3 (teachers from
# timm and HuggingFace; transformers >= 4.53 breaks `import mmpretrain.models`, whose BLIP code
# imports names those versions removed), openmim 0.3.9 (`mim train`), the checks' tools
# (pre-commit, ruff, isort, docformatter, mypy), pytest with pytest-xdist, and this package in
# editable mode.
#
# STACK=onedl installs the maintained OneDL forks instead, on the same torch: onedl-mmengine
# 0.10.12, onedl-mmcv 2.3.6 (also built from source), onedl-mmpretrain 1.3.6, onedl-mmdetection
# 3.5.1 (they install the same import names: mmengine, mmcv, mmpretrain, mmdet).
#
# Idempotent: a second run checks the imports and returns in seconds.
# Usage: bash tools/setup_env.sh            (VENV=path to use another location,
#                                            STACK=onedl for the forks)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
STACK="${STACK:-openmmlab}"
case "$STACK" in
  openmmlab)
    MMENGINE='mmengine==0.10.7'; MMCV='mmcv==2.1.0'; MMCV_VERSION='2.1.0'
    HOSTS=('mmpretrain==1.2.0' 'mmdet==3.3.0') ;;
  onedl)
    MMENGINE='onedl-mmengine==0.10.12'; MMCV='onedl-mmcv==2.3.6'; MMCV_VERSION='2.3.6'
    HOSTS=('onedl-mmpretrain==1.3.6' 'onedl-mmdetection==3.5.1') ;;
  *) echo "[setup] ERROR: STACK must be openmmlab or onedl, got '$STACK'" >&2; exit 1 ;;
esac
export MMCV_VERSION
STAMP="$VENV/.mmkd_stack_ok_$STACK"

stack_works() {
  "$PY" - <<'PY' 2>/dev/null
import mmcv.ops, mmdet, mmengine, mmpretrain, torch, torchvision, sklearn, pycocotools, pytest
import xdist  # noqa: F401  (pytest-xdist: the suite runs on several processes)
import safetensors, timm, transformers
import mmpretrain.models  # imports transformers' internals (BLIP): the pinned version has them
import mmkd_plugins  # noqa: F401
import mim.commands.train  # noqa: F401
import docformatter, isort, mypy, pre_commit, ruff  # noqa: E401,F401
assert torch.__version__.startswith('2.14.1'), torch.__version__
import os
assert mmcv.__version__ == os.environ['MMCV_VERSION'], mmcv.__version__
assert timm.__version__ == '1.0.31', timm.__version__
assert transformers.__version__ == '4.50.3', transformers.__version__
PY
}

if [[ -x "$PY" && -f "$STAMP" ]] && stack_works; then
  echo "[setup] environment at $VENV is ready"
  exit 0
fi

[[ -x "$PY" ]] || python3 -m venv "$VENV"
PIP=("$PY" -m pip install --disable-pip-version-check -q)

echo "[setup] installing torch, torchvision, $MMENGINE and build tools"
"${PIP[@]}" --upgrade pip
"${PIP[@]}" 'torch==2.14.1' 'torchvision==0.29.1' "$MMENGINE" \
  'setuptools>=77,<81' wheel ninja

# mmcv (2.1.0, and onedl-mmcv 2.3.6) has no wheel for this torch: compile it. Its setup.py
# hard-codes -std=c++17 while torch 2.14's headers need C++20; a compiler wrapper appends
# -std=c++20 (last wins).
build_mmcv() {
  local wrap_dir
  wrap_dir="$(mktemp -d)"
  printf '#!/bin/sh\nexec g++ "$@" -std=c++20\n' >"$wrap_dir/gxx20"
  chmod +x "$wrap_dir/gxx20"
  echo "[setup] building $MMCV from source (about 10-16 minutes on 2 cores)"
  CXX="$wrap_dir/gxx20" MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-2}" \
    "${PIP[@]}" --no-build-isolation "$@" "$MMCV"
  rm -rf "$wrap_dir"
}
mmcv_ops_import() { "$PY" -c 'import mmcv.ops' 2>/dev/null; }

if ! mmcv_ops_import; then
  build_mmcv
  if ! mmcv_ops_import; then
    # pip may hand back a cached wheel compiled against another torch: rebuild it.
    echo "[setup] cached mmcv wheel does not match this torch; rebuilding without the cache"
    "$PY" -m pip uninstall -y -q "${MMCV%%==*}"
    build_mmcv --no-cache-dir
    mmcv_ops_import || { echo "[setup] ERROR: 'import mmcv.ops' still fails" >&2; exit 1; }
  fi
fi

echo "[setup] installing ${HOSTS[*]} and the package"
"${PIP[@]}" "${HOSTS[@]}" 'pycocotools' 'scikit-learn' 'matplotlib' 'pytest' \
  'pytest-xdist==3.8.0' 'timm==1.0.31' 'transformers==4.50.3'
# the checks of .pre-commit-config.yaml (CI runs them)
"${PIP[@]}" 'pre-commit==4.7.0' 'ruff==0.17.6' 'isort==9.0.2' 'mypy==2.4.1' \
  'docformatter==1.7.8'
# mim (`mim train`): without its dataset-download dependencies (opendatalab, openxlab), which
# pin old setuptools and requests over the stack's.
"${PIP[@]}" --no-deps 'openmim==0.3.9'
"${PIP[@]}" click colorama model-index pandas rich tabulate
echo "[setup] (pip's notes that openmim requires opendatalab are expected: mim's dataset" \
  "downloads are left out)"
"${PIP[@]}" --no-build-isolation --no-deps -e "$ROOT"

stack_works || { echo "[setup] ERROR: the installed stack does not import" >&2; exit 1; }
touch "$STAMP"
echo "[setup] environment at $VENV is ready"
