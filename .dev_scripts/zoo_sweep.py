"""Sweep every model family of the installed mmpretrain and mmdet config trees: does distillation
build, train, export and load for it? Writes ``docs/zoo_coverage.md``.

For each family (see ``.dev_scripts/zoo/planning.py`` for how the student and teacher configs are
chosen, ``.dev_scripts/zoo/case_configs.py`` for what is changed to run without datasets, network or
GPU, ``.dev_scripts/zoo/case_runner.py`` for what counts as ok, refused or failed), one process runs
the case under a time limit. Results are kept per family in ``--results-dir`` (committed, so
that a sweep longer than one sitting continues where it stopped, on any machine; ``--rerun``
repeats families already swept); the table is written from all the results there, families
not swept yet counted as such.

Examples:
    python .dev_scripts/zoo_sweep.py                       # everything (hours on 2 cores)
    python .dev_scripts/zoo_sweep.py --families mmpretrain/levit mmdet/tood --out coverage.md
"""

import argparse
import json
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from tqdm import tqdm  # noqa: E402
from zoo.planning import ZOO_PACKAGES, families, plan_family  # noqa: E402
from zoo.report import coverage_markdown, family_verdict  # noqa: E402

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Distill one case per model-zoo family')
    parser.add_argument('--families', nargs='+', metavar='ZOO/FAMILY',
                        help='families to sweep, e.g. mmpretrain/resnet mmdet/tood (default: '
                        'all of --zoos)')
    parser.add_argument('--zoos', nargs='+', choices=ZOO_PACKAGES, default=list(ZOO_PACKAGES))
    parser.add_argument('--work-dir', default='work_dirs/zoo_sweep',
                        help='logs, case files and generated data')
    parser.add_argument('--results-dir', default='docs/zoo_sweep_results',
                        help='one result file per family (resumable)')
    parser.add_argument('--out', default='docs/zoo_coverage.md', help='the table to write')
    parser.add_argument('--time-limit', type=float, default=900,
                        help='seconds per family case (planning included)')
    parser.add_argument('--max-teacher-params', type=float, default=100e6,
                        help='the biggest teacher the sweep picks, in parameters')
    parser.add_argument('--jobs', type=int, default=1, help='cases run at the same time')
    parser.add_argument('--threads', type=int, default=2, help='torch threads per training')
    parser.add_argument('--rerun', action='store_true', help='sweep families already swept')
    parser.add_argument('--report-only', action='store_true',
                        help='write the table from the results already in --results-dir')
    parser.add_argument('--keep-checkpoints', action='store_true',
                        help='keep the cases\' .pth files (deleted by default: disk)')
    parser.add_argument('--case', help=argparse.SUPPRESS)  # internal: run one case in-process
    return parser.parse_args(argv)


def generated_data(work_dir: str) -> Dict[str, str]:
    """Write (once) the generated classification folder and detection COCO set."""
    from mmkd_plugins.testing import write_digits_folder, write_shapes_coco
    roots = {'classifier': osp.join(work_dir, 'data', 'digits'),
             'detector': osp.join(work_dir, 'data', 'shapes')}
    if not osp.isfile(osp.join(roots['classifier'], 'train.txt')):
        write_digits_folder(roots['classifier'], {'train': 4}, image_size=32)
    if not osp.isfile(osp.join(roots['detector'], 'annotations', 'train.json')):
        write_shapes_coco(roots['detector'], {'train': 4}, image_size=128, min_size=24,
                          max_size=48)
    return roots


def selected(args: argparse.Namespace) -> List[Tuple[str, str]]:
    if args.families:
        chosen = []
        for name in args.families:
            zoo, _, family = name.partition('/')
            if zoo not in ZOO_PACKAGES or family not in families(zoo):
                raise SystemExit(f'--families: {name!r} is not ZOO/FAMILY of the installed '
                                 f'config trees (zoos: {", ".join(ZOO_PACKAGES)})')
            chosen.append((zoo, family))
        return chosen
    return [(zoo, family) for zoo in args.zoos for family in families(zoo)]


def run_case_process(args: argparse.Namespace, zoo: str, family: str, case_dir: str,
                     data_roots: Dict[str, str]) -> dict:
    """Plan and run one family's case in its own process group, killed at the time limit."""
    spec = osp.join(case_dir, 'spec.json')
    with open(spec, 'w') as file:
        json.dump(dict(zoo=zoo, family=family, data_roots=data_roots, threads=args.threads,
                       max_teacher_params=args.max_teacher_params), file)
    command = [sys.executable, osp.abspath(__file__), '--case', spec]
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    with open(osp.join(case_dir, 'case.log'), 'w') as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            process.wait(timeout=args.time_limit)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    result_path = osp.join(case_dir, 'result.json')
    result = dict(zoo=zoo, family=family)
    if osp.isfile(result_path):
        with open(result_path) as file:
            result = json.load(file)
    if process.returncode != 0 or 'not_attempted' not in result and 'stages' not in result:
        reason = (f'time limit of {args.time_limit:.0f} s reached' if process.returncode ==
                  -signal.SIGKILL else f'the case process exited with {process.returncode}')
        result.setdefault('kind', '?')
        result.setdefault('student', '?')
        result.setdefault('teacher', result['student'])
        stages = result.setdefault('stages', {})
        for stage in ('kd', 'dist', 'blockwise'):
            stages.setdefault(stage, dict(status='failed', message=reason))
        result['seconds'] = args.time_limit
    return result


def case_main(spec_path: str) -> None:
    """The case process: plan the family, then run its stages (``--case``)."""
    from zoo.case_runner import run_case

    import mmkd_plugins  # noqa: F401
    with open(spec_path) as file:
        spec = json.load(file)
    case_dir = osp.dirname(spec_path)
    started = time.time()
    plan = plan_family(spec['zoo'], spec['family'], spec['max_teacher_params'])
    with open(osp.join(case_dir, 'plan.json'), 'w') as file:
        json.dump(plan, file, indent=1)
    if 'not_attempted' in plan:
        with open(osp.join(case_dir, 'result.json'), 'w') as file:
            json.dump(plan, file, indent=1)
        return
    data_root = spec['data_roots']['classifier' if plan['kind'] == 'classifier' else 'detector']
    result = run_case(plan, case_dir, data_root, spec['threads'])
    result['seconds'] = round(time.time() - started, 1)
    with open(osp.join(case_dir, 'result.json'), 'w') as file:
        json.dump(result, file, indent=1)


def versions() -> str:
    """The installed stack's versions, read from the modules (the OneDL forks install the same
    modules under other distribution names)."""
    import importlib
    return ', '.join(f'{name} {importlib.import_module(name).__version__}' for name in
                     ('torch', 'mmengine', 'mmcv', 'mmpretrain', 'mmdet'))


def main() -> None:
    args = parse_args()
    if args.case:
        case_main(args.case)
        return
    chosen = selected(args)
    data_roots = generated_data(args.work_dir)
    results_dir = args.results_dir
    os.makedirs(results_dir, exist_ok=True)
    pending = [] if args.report_only else [
        (zoo, family) for zoo, family in chosen
        if args.rerun or not osp.isfile(osp.join(results_dir, f'{zoo}__{family}.json'))]
    progress = tqdm(total=len(pending), unit='family', dynamic_ncols=True)

    def sweep_family(zoo: str, family: str) -> None:
        case_dir = osp.join(args.work_dir, 'cases', zoo, family)
        shutil.rmtree(case_dir, ignore_errors=True)
        os.makedirs(case_dir)
        result = run_case_process(args, zoo, family, case_dir, data_roots)
        if not args.keep_checkpoints:
            for root, _, files in os.walk(case_dir):
                for name in files:
                    if name.endswith('.pth'):
                        os.remove(osp.join(root, name))
        with open(osp.join(results_dir, f'{zoo}__{family}.json'), 'w') as file:
            json.dump(result, file, indent=1)
        verdict = ('not attempted' if 'not_attempted' in result else family_verdict(result))
        progress.write(f'{zoo}/{family}: {verdict} ({result.get("seconds", 0):.0f} s)')
        progress.update()

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # each case is its own process
        for done in [pool.submit(sweep_family, zoo, family) for zoo, family in pending]:
            done.result()
    progress.close()
    results = []
    for name in sorted(os.listdir(results_dir)):
        with open(osp.join(results_dir, name)) as file:
            results.append(json.load(file))
    command = ' '.join(['python .dev_scripts/zoo_sweep.py', f'--jobs {args.jobs}',
                        f'--threads {args.threads}', f'--time-limit {args.time_limit:.0f}',
                        f'--max-teacher-params {args.max_teacher_params:.0e}'])
    table = coverage_markdown(results, {zoo: families(zoo) for zoo in ZOO_PACKAGES}, command,
                              versions())
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as file:
        file.write(table)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
