"""Running the repository's tools from the demo scripts and reading their logs."""
import glob
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
from typing import List

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run_tool(script: str, *args: str) -> None:
    """Run ``tools/<script>`` from the repository root with one thread; raise on failure."""
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO_ROOT)
    command = [sys.executable, osp.join('tools', script), *args]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-2000:] + result.stderr[-4000:])
        raise RuntimeError(f'failed: {" ".join(command)}')


def last_logged(work_dir: str, key: str) -> float:
    """The last value of ``key`` in the run's scalar log (e.g. the final validation metric)."""
    log = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))[-1]
    with open(log) as file:
        lines = [json.loads(line) for line in file if f'"{key}"' in line]
    return lines[-1][key]


def train(config: str, work_dir: str, seed: int, metric: str, *options: str) -> float:
    """Run tools/train.py with ``seed`` and config overrides; return the final ``metric``."""
    run_tool('train.py', config, '--work-dir', work_dir, '--cfg-options',
             f'randomness.seed={seed}', *options)
    return last_logged(work_dir, metric)


def mean_and_std(values: List[float]) -> str:
    """``'mean ± sample std'`` with two decimals."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f'{statistics.mean(values):.2f} ± {std:.2f}'
