#!/usr/bin/env bash
# Set up the environment if needed (tools/setup_env.sh), then run the test suite.
# Extra arguments go to pytest, e.g. `bash tools/run_tests.sh -k losses`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
exec "${VENV:-$ROOT/.venv}/bin/python" -m pytest tests "$@"
