"""Run one sweep case: random teacher weights, two training runs through ``tools/train.py`` (KD +
DIST in one Distiller; block-wise), the export strict-loaded into the stock student config.

Each stage's outcome is one of:

* ``ok``: trained, every distillation loss logged finite and not all zero (the value shown is
  the last logged one); for the export, the student loaded strictly;
* ``refused``: stopped before the first iteration by a message of this project that names the
  config field (a build-time refusal);
* ``failed``: anything else (the exception's last line and where it was raised); the stock
  student config is then trained the same way without distillation (``stock``), to tell a
  defect of ours from one of the stock config or its package.

The result is written after every stage, so a case stopped by the sweep's time limit keeps the
stages it finished.
"""

import glob
import json
import math
import os
import os.path as osp
import re
import subprocess
import sys
import time
from typing import Dict, List, Optional

import torch

from mmkd_plugins.models.teachers import (build_model_from_config, load_model_config,
                                          load_state_dict_strictly)
from .case_configs import stock_student_config, sweep_config, user_config_text, without_pretrained

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RUNTIME_FRAGMENT = osp.join(REPO_ROOT, 'configs', '_base_', 'distillation_runtime.py')
FRAME = re.compile(r'^  File "(.+)", line (\d+), in (.+)$')


def save_random_teacher(teacher: str, path: str, initialized: bool = False, seed: int = 0,
                        cfg_options: Optional[dict] = None) -> None:
    """Random weights (torch seed ``seed``) of the teacher config's architecture (with
    ``cfg_options`` merged), saved as a model-zoo checkpoint.

    With ``initialized``, the weights are the model's own ``init_weights()`` (pretrained weights
    left out): DETR-family models create their level embeddings without values and fill them there,
    so without it they would hold whatever memory held (NaN in some runs).
    """
    torch.manual_seed(seed)
    config = load_model_config(teacher, 'teacher', cfg_options)
    if initialized:
        config.model = without_pretrained(config.model)
    model = build_model_from_config(config)
    if initialized:
        model.init_weights()
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)


def last_exception(stderr: str) -> Optional[dict]:
    """The last traceback of ``stderr``: the exception text and the deepest frame."""
    start = stderr.rfind('Traceback (most recent call last):')
    if start < 0:
        return None
    frames, message = [], []
    for line in stderr[start:].splitlines()[1:]:
        frame = FRAME.match(line)
        if frame:
            frames.append(f'{frame.group(1)}:{frame.group(2)} ({frame.group(3)})')
            message = []
        elif not line.startswith(' ') and line.strip():
            message.append(line)
    return dict(message='\n'.join(message).strip(), where=frames[-1] if frames else '')


def short_path(where: str) -> str:
    """``.../site-packages/mmdet/models/x.py:12 (f)`` -> ``mmdet/models/x.py:12 (f)``."""
    for marker in ('site-packages/', REPO_ROOT + '/'):
        if marker in where:
            return where.split(marker, 1)[1]
    return where


def logged_scalars(work_dir: str) -> List[dict]:
    paths = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not paths:
        return []
    with open(paths[-1]) as file:
        return [json.loads(line) for line in file if line.strip()]


def distill_loss_values(scalars: List[dict]) -> Dict[str, List[float]]:
    """Every logged distillation term (``distill.*``, ``hybrid<i>.distill.*``, ``cross.*``)."""
    values: Dict[str, List[float]] = {}
    for line in scalars:
        for key, value in line.items():
            if 'distill.' in key or key.startswith('cross.') or '.cross.' in key:
                values.setdefault(key, []).append(float(value))
    return values


def train(config: str, work_dir: str, threads: int) -> dict:
    """Run ``tools/train.py config``; the run's scalars, or the exception that stopped it."""
    search_path = [REPO_ROOT, osp.join(REPO_ROOT, '.dev_scripts'),
                   os.environ.get('PYTHONPATH', '')]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(search_path), OMP_NUM_THREADS=str(threads))
    started = time.time()
    result = subprocess.run([sys.executable, osp.join(REPO_ROOT, 'tools', 'train.py'), config,
                             '--work-dir', work_dir], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True)
    with open(osp.join(work_dir, 'train_stderr.log'), 'w') as file:
        file.write(result.stderr)
    return dict(returncode=result.returncode, scalars=logged_scalars(work_dir),
                exception=last_exception(result.stderr), seconds=time.time() - started)


def stopped(run: dict) -> dict:
    """The stage outcome of a run that did not finish."""
    exception = run['exception'] or dict(message=f'exit status {run["returncode"]}', where='')
    ours = '/mmkd_plugins/' in exception['where']
    refused = not run['scalars'] and ours and 'model.' in exception['message']
    return dict(status='refused' if refused else 'failed',
                message=exception['message'][:600], where=short_path(exception['where']))


def loss_outcome(run: dict, names: List[str]) -> Dict[str, dict]:
    """Per loss name: ``ok`` with its last value, or why not."""
    if run['returncode'] != 0:
        return {name: stopped(run) for name in names}
    values = distill_loss_values(run['scalars'])
    outcomes = {}
    for name in names:
        logged = {key: series for key, series in values.items()
                  if key.split('.')[-1] == name}
        flat = [value for series in logged.values() for value in series]
        if not flat:
            outcomes[name] = dict(status='failed', message=f'{name} was never logged')
        elif not all(math.isfinite(value) for value in flat):
            outcomes[name] = dict(status='failed', message=f'{name} not finite: {flat}')
        elif not any(value != 0 for value in flat):
            outcomes[name] = dict(status='failed', message=f'{name} is zero at every step')
        else:
            outcomes[name] = dict(status='ok', value=flat[-1], terms=len(logged))
    return outcomes


def check_export(student: str, exported: str) -> dict:
    """Strict-load the exported student into a model built from the stock student config: every key
    matched, except those the model's own load hooks drop from any state dict (Swin-V2's recomputed
    buffers, which mmengine's ``strict=True`` would count as missing even for the model's own
    checkpoint; the stock tools load non-strictly)."""
    if not osp.isfile(exported):
        return dict(status='failed', message=f'{osp.basename(exported)} was not written')
    try:
        model = build_model_from_config(stock_student_config(student))
        state_dict = torch.load(exported, map_location='cpu', weights_only=True)['state_dict']
        load_state_dict_strictly(model, state_dict, 'export', osp.basename(exported))
    except Exception as error:
        return dict(status='failed', message=f'{type(error).__name__}: {error}'[:600])
    return dict(status='ok')


def blockwise_refusal(student: str) -> Optional[dict]:
    """The message block-wise distillation's build would stop with because the student's backbone
    has no stage splitter (the same function raises it there), or None.

    Spares the sweep a training process that could only print it.
    """
    from mmkd_plugins.models.blockwise.backbone_stages import split_backbone
    model = build_model_from_config(stock_student_config(student))
    try:
        split_backbone(model.backbone, 'model.student.backbone')
    except (TypeError, ValueError) as error:
        return dict(status='refused', message=str(error)[:600],
                    where='mmkd_plugins/models/blockwise/backbone_stages.py (split_backbone)')
    return None


def stock_baseline(plan: dict, case_dir: str, data_root: str, threads: int) -> dict:
    """After a failed distillation run: does the stock student config itself train the same two
    iterations (no distillation)?

    ``ok``, or ``failed`` with its exception.
    """
    work_dir = osp.join(case_dir, 'stock')
    os.makedirs(work_dir, exist_ok=True)
    user_config = osp.join(case_dir, 'stock.py')
    with open(user_config, 'w') as file:
        file.write(f"_base_ = [{plan['student']!r}]\n")
    try:
        config = osp.join(case_dir, 'stock_sweep.py')
        sweep_config(user_config, plan['kind'], data_root).dump(config)
    except Exception as error:
        return dict(status='failed', message=f'{type(error).__name__}: {error}'[:600])
    return stock_outcome(train(config, work_dir, threads))


def stock_outcome(run: dict) -> dict:
    """``ok`` for a stock run that ended with finite losses at every step; a stock config has no
    hook that stops at a NaN, so one that ran through NaN losses ``failed`` too."""
    if run['returncode'] != 0:
        return stopped(run)
    for line in run['scalars']:
        bad = [key for key, value in line.items()
               if 'loss' in key and not math.isfinite(float(value))]
        if bad:
            return dict(status='failed', where='the stock config, no distillation',
                        message=f'non-finite losses at iteration {line.get("iter")}: '
                        + ', '.join(bad))
    return dict(status='ok')


def run_case(plan: dict, case_dir: str, data_root: str, threads: int) -> dict:
    """Run every stage of ``plan``'s case in ``case_dir``; returns (and saves) the result."""
    started = time.time()
    result = dict(plan, stages={})
    result_path = osp.join(case_dir, 'result.json')

    def save() -> None:
        result['seconds'] = round(time.time() - started, 1)
        with open(result_path, 'w') as file:
            json.dump(result, file, indent=1)

    checkpoint = osp.join(case_dir, 'teacher_random.pth')
    try:
        save_random_teacher(plan['teacher'], checkpoint, initialized=plan['kind'] == 'detr')
    except Exception as error:
        result['stages']['teacher'] = dict(status='failed',
                                           message=f'{type(error).__name__}: {error}'[:600])
        save()
        return result
    for method, names in (('kd_dist', ['loss_kd', 'loss_dist']), ('blockwise', ['loss_kd'])):
        if method == 'blockwise':
            refusal = blockwise_refusal(plan['student'])
            if refusal is not None:
                result['stages']['blockwise'] = refusal
                save()
                continue
        work_dir = osp.join(case_dir, method)
        os.makedirs(work_dir, exist_ok=True)
        user_config = osp.join(case_dir, f'{method}.py')
        with open(user_config, 'w') as file:
            file.write(user_config_text(plan['student'], plan['teacher'], checkpoint,
                                        plan['kind'], method, RUNTIME_FRAGMENT))
        try:
            config = osp.join(case_dir, f'{method}_sweep.py')
            sweep_config(user_config, plan['kind'], data_root).dump(config)
        except Exception as error:  # the user's config does not even load
            outcome = dict(status='failed', message=f'{type(error).__name__}: {error}'[:600])
            outcomes = {name: outcome for name in names}
        else:
            outcomes = loss_outcome(train(config, work_dir, threads), names)
        if method == 'kd_dist':
            result['stages'].update(kd=outcomes['loss_kd'], dist=outcomes['loss_dist'])
            if outcomes['loss_kd']['status'] == 'ok':
                result['stages']['export'] = check_export(
                    plan['student'], osp.join(work_dir, 'student_final.pth'))
            elif outcomes['loss_kd']['status'] == 'failed':
                result['stages']['stock'] = stock_baseline(plan, case_dir, data_root, threads)
        else:
            result['stages']['blockwise'] = outcomes['loss_kd']
        save()
    return result
