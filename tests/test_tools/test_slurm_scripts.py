"""tools/slurm_train.sh and tools/slurm_test.sh, run through stand-ins for ``srun`` and ``scontrol``
on PATH that start the tasks as local processes with a real Slurm task environment (SLURM_PROCID,
SLURM_LOCALID, SLURM_NTASKS, SLURM_NODELIST): 2 gloo processes."""

import json
import os
import os.path as osp
import subprocess
import sys

from ..conftest import REPO_ROOT, cfg_options_args, free_port, tool_env
from ..support.runs import kd_options, probed_kd_config

STAND_IN_SRUN =\
                r'''#!/usr/bin/env bash
# srun for one node: records its options, starts --ntasks copies of the command
echo "$@" > "$SRUN_LOG"
ntasks=1; per_node=1
while [[ "$1" == -* ]]; do
  case "$1" in
    --ntasks=*) ntasks="${1#*=}" ;;
    --ntasks-per-node=*) per_node="${1#*=}" ;;
  esac
  shift
done
pids=()
for ((rank = 0; rank < ntasks; rank++)); do
  SLURM_PROCID=$rank SLURM_LOCALID=$((rank % per_node)) SLURM_NTASKS=$ntasks \
  SLURM_NODELIST='node[01]' "$@" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
'''
STAND_IN_SCONTROL =\
                    r'''#!/usr/bin/env bash
# scontrol show hostnames NODELIST: this machine
[[ "$1 $2" == "show hostnames" ]] && echo 127.0.0.1
'''
def slurm_env(tmp_path) -> dict:
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, script in (('srun', STAND_IN_SRUN), ('scontrol', STAND_IN_SCONTROL)):
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    return dict(tool_env(), PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}',
                PYTHON=sys.executable, MASTER_PORT=str(free_port()), GPUS='2',
                GPUS_PER_NODE='2', CPUS_PER_TASK='1', SRUN_ARGS='--quiet --exclusive',
                SRUN_LOG=str(tmp_path / 'srun_args.txt'))


def test_slurm_train_and_test_run_two_tasks(tmp_path, digits_root, trained_teacher):
    env = slurm_env(tmp_path)
    work_dir = str(tmp_path / 'slurm')
    train = subprocess.run(
        ['bash', 'tools/slurm_train.sh', 'gpu_partition', 'kd_job', probed_kd_config(tmp_path),
         work_dir, *cfg_options_args(kd_options(digits_root, trained_teacher, 1))],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stderr[-5000:]
    srun_args = (tmp_path / 'srun_args.txt').read_text().split()
    for expected in ('--partition=gpu_partition', '--job-name=kd_job', '--gres=gpu:2',
                     '--ntasks=2', '--ntasks-per-node=2', '--cpus-per-task=1', '--quiet',
                     '--exclusive', '--launcher=slurm'):
        assert expected in srun_args, srun_args
    for rank in (0, 1):
        with open(osp.join(work_dir, f'rank{rank}.json')) as file:
            record = json.load(file)
        assert record['rank'] == rank and record['world_size'] == 2 and record['wrapped']
    assert osp.isfile(osp.join(work_dir, 'student_final.pth'))

    test = subprocess.run(
        ['bash', 'tools/slurm_test.sh', 'gpu_partition', 'kd_eval',
         osp.join(work_dir, 'student_config.py'), osp.join(work_dir, 'student_final.pth'),
         '--work-dir', str(tmp_path / 'eval')],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert test.returncode == 0, test.stderr[-5000:]
    assert 'accuracy/top1' in test.stdout + test.stderr
    assert '--job-name=kd_eval' in (tmp_path / 'srun_args.txt').read_text()
