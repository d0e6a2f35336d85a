#!/usr/bin/env bash
# Set up the environment if needed (tools/setup_env.sh), then run the embedded default: KD and
# DIST on scikit-learn's handwritten digits, printing teacher / baseline / KD / DIST top-1.
# Extra arguments go to tools/demo/run_classification_demo.py (see its --help).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
exec "${VENV:-$ROOT/.venv}/bin/python" tools/demo/run_classification_demo.py "$@"
