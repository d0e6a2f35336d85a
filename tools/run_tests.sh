#!/usr/bin/env bash
# Set up the environment if needed (tools/setup_env.sh), then run the test suite on several
# processes (pytest-xdist; each test module runs whole on one of them, so a module's fixtures
# are built once): one per CPU core, at most 4 (each can hold a training run's memory);
# TEST_WORKERS=N chooses, TEST_WORKERS=0 runs in this process only.
# Extra arguments go to pytest, e.g. `bash tools/run_tests.sh -k losses`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
CORES="$(nproc 2>/dev/null || echo 1)"
WORKERS="${TEST_WORKERS:-$(( CORES < 4 ? CORES : 4 ))}"
if [[ "$WORKERS" -gt 1 ]]; then
  PARALLEL=(-n "$WORKERS" --dist loadscope)
else
  PARALLEL=(-p no:xdist)
fi
exec "${VENV:-$ROOT/.venv}/bin/python" -m pytest tests "${PARALLEL[@]}" "$@"
