#!/usr/bin/env bash
# Set up the environment if needed (tools/setup_env.sh), then run a demo:
#   bash tools/run_demo.sh              the embedded default: KD and DIST on scikit-learn's
#                                       handwritten digits (teacher / baseline / KD / DIST top-1)
#   bash tools/run_demo.sh detection    RetinaNet KD, DIST and block-wise on generated shapes
#   bash tools/run_demo.sh detection --family dino
#                                       DINO KD and block-wise on them (about 1.5 hours)
# Further arguments go to the demo script (see its --help).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
DEMO=tools/demo/run_classification_demo.py
if [[ "${1:-}" == "detection" ]]; then
  DEMO=tools/demo/run_detection_demo.py
  shift
fi
exec "${VENV:-$ROOT/.venv}/bin/python" "$DEMO" "$@"
