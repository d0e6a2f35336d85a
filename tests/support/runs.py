"""Support for tests that train through the tools in subprocesses: the options of a short KD run,
its logged losses, a config with a probe hook per rank, and two-process DDP."""

import subprocess
import sys

from ..conftest import (KD_CONFIG, REPO_ROOT, cfg_options_args, epochs_options, free_port, scalars,
                        tool_env)


def kd_options(digits_root, teacher, epochs, **extra):
    options = dict(epochs_options(digits_root, epochs), **{
        'model.teacher.checkpoint': teacher, 'train_dataloader.batch_size': 8,
        'default_hooks.logger.interval': 1, 'randomness.seed': 0})
    options.update(extra)
    return options


def train_losses(work_dir):
    """(global iteration, total loss, KD loss) of every logged training iteration."""
    return [(line['step'], line['loss'], line['distill.loss_kd'])
            for line in scalars(work_dir) if 'distill.loss_kd' in line]


def probed_kd_config(tmp_path) -> str:
    """The KD demo config with a hook that records each rank's losses."""
    config = tmp_path / 'kd_with_probe.py'
    config.write_text(
        f'_base_ = {KD_CONFIG!r}\n'
        "custom_imports = dict(imports=['mmkd_plugins', 'tests.test_tools.rank_probe_hook'])\n"
        "custom_hooks = [dict(type='mmkd_plugins.RankProbeHook')]\n")
    return str(config)


def run_dist_train(config: str, work_dir: str, options: dict,
                   *args: str) -> subprocess.CompletedProcess:
    """tools/dist_train.sh with 2 processes (gloo) on a free port, at most 5 minutes."""
    env = dict(tool_env(), PORT=str(free_port()), PYTHON=sys.executable)
    return subprocess.run(['bash', 'tools/dist_train.sh', config, '2', '--work-dir', work_dir,
                           *args, *cfg_options_args(options)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


def option_rows(output: str) -> dict:
    """check_teacher_options.py's table: option -> (value, change, within tolerance)."""
    lines = output.splitlines()
    table = lines[lines.index('| teacher option | metric | value | change | ms/image | within '
                              'tolerance |') + 2:]
    rows = [line.strip('|').split('|') for line in table if line.startswith('| ')]
    return {cells[0].strip(): (float(cells[2]), float(cells[3]), cells[5].strip())
            for cells in rows}
