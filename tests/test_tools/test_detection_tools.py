"""Detection through the tools: a RetinaNet teacher trained from a stock-inheriting config, KD into
the student, export, strict load into the stock student and a real CocoMetric evaluation."""

import csv
import json
import os.path as osp
from collections import defaultdict
from contextlib import contextmanager

import pytest
import torch
from mmengine.config import Config
from mmengine.hub import get_config

from mmkd_plugins.analysis import evaluate_model
from mmkd_plugins.checkpoint import safe_torch_load
from mmkd_plugins.models.teachers import build_model_from_config
from ..conftest import (DET_DEMO_CONFIGS, cfg_options_args, run_tool, save_random_checkpoint,
                        scalars, shapes_dataset)
from ..support.detectors import FASTER_RCNN_SMALL, SMALL_PIPELINE
from ..support.runs import option_rows

TEACHER = str(DET_DEMO_CONFIGS / 'teacher_retinanet_r18_shapes.py')
STUDENT = str(DET_DEMO_CONFIGS / 'student_retinanet_r18w16_shapes.py')
KD = str(DET_DEMO_CONFIGS / 'kd_retinanet_r18_retinanet_r18w16_shapes.py')


def shapes_options(shapes_root: str) -> dict:
    root = shapes_root + '/'
    options = {f'{split}_dataloader.dataset.data_root': root
               for split in ('train', 'val', 'test')}
    options.update({f'{split}_evaluator.ann_file': root + 'annotations/val.json'
                    for split in ('val', 'test')})
    options.update({'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1,
                    'default_hooks.checkpoint.interval': 1})
    return options


def test_a_retinanet_kd_run_exports_a_student_that_the_test_and_compare_tools_score_alike(
        tmp_path, shapes_root):
    teacher_dir, kd_dir = str(tmp_path / 'teacher'), str(tmp_path / 'kd')
    options = shapes_options(shapes_root)
    run_tool('train.py', TEACHER, '--work-dir', teacher_dir, *cfg_options_args(options))
    teacher = osp.join(teacher_dir, 'epoch_1.pth')
    run_tool('train.py', KD, '--work-dir', kd_dir,
             *cfg_options_args(dict(options, **{'model.teacher.checkpoint': teacher})))
    logged = [line for line in scalars(kd_dir) if 'distill.loss_kd' in line]
    assert logged and all(line['distill.loss_kd'] > 0 for line in logged)
    assert all('student.loss_cls' in line and 'student.loss_bbox' in line for line in logged)

    student_path = osp.join(kd_dir, 'student_final.pth')
    stock = build_model_from_config(Config.fromfile(STUDENT))
    stock.load_state_dict(safe_torch_load(student_path)['state_dict'], strict=True)
    assert not any(k.startswith('teacher') for k in safe_torch_load(student_path)['state_dict'])

    metrics_file = osp.join(kd_dir, 'metrics.json')
    # One epoch on 16 images scores nothing above mmdet's 0.05 threshold: keep every box so
    # that pycocotools has detections to evaluate.
    test_options = dict(shapes_options(shapes_root), **{'model.test_cfg.score_thr': 0.0})
    run_tool('test.py', osp.join(kd_dir, 'student_config.py'), student_path, '--work-dir',
             kd_dir, '--out', metrics_file, *cfg_options_args(test_options))
    with open(metrics_file) as file:
        metrics = json.load(file)
    assert {'coco/bbox_mAP', 'coco/bbox_mAP_50'} <= set(metrics)
    assert 0.0 <= metrics['coco/bbox_mAP'] <= 1.0
    assert torch.isfinite(torch.tensor(metrics['coco/bbox_mAP']))

    # The comparison tool evaluates the same student to the same CocoMetric figures.
    report = str(tmp_path / 'report')
    run_tool(osp.join('analysis', 'compare.py'), '--model', TEACHER, teacher, 'teacher',
             '--model', osp.join(kd_dir, 'student_config.py'), student_path, 'KD',
             '--out', report, *cfg_options_args(test_options))
    with open(osp.join(report, 'comparison.csv')) as file:
        rows = {row['model']: row for row in csv.DictReader(file)}
    assert float(rows['KD']['bbox_mAP']) == pytest.approx(100 * metrics['coco/bbox_mAP'],
                                                          abs=1e-6)
    assert -1.0 <= float(rows['KD']['mean_pearson']) <= 1.0 and rows['teacher']['mean_kl'] == ''
    assert float(rows['KD']['mean_kl']) > 0  # a one-epoch student does not match its teacher
    assert osp.getsize(osp.join(report, 'per_class.png')) > 0

    # The teacher-option check decodes a bf16 teacher's boxes in float32 (mmcv's NMS takes no
    # bfloat16) and agrees with the comparison in float32.
    result = run_tool(osp.join('analysis', 'check_teacher_options.py'), TEACHER, teacher,
                      *cfg_options_args(test_options))
    options = option_rows(result.stdout)
    assert list(options) == ['float32', 'channels_last', 'bf16', 'channels_last+bf16']
    assert options['float32'][0] == pytest.approx(float(rows['teacher']['bbox_mAP']), abs=0.005)


def test_a_bf16_two_stage_detector_evaluates_with_float32_roi_ops_and_near_float32_metrics(
        tmp_path, shapes_root):
    # RPN proposals are suppressed and RoIs pooled (mmcv ops without bfloat16) in float32.
    base = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
    small = dict(FASTER_RCNN_SMALL, test_cfg=dict(rcnn=dict(score_thr=0.0)))
    config = get_config(base)
    config.merge_from_dict(dict(model=small))
    config.test_dataloader.dataset = shapes_dataset(shapes_root, 'val', SMALL_PIPELINE)
    config.test_evaluator.ann_file = osp.join(shapes_root, 'annotations', 'val.json')
    checkpoint = save_random_checkpoint(base, str(tmp_path / 'frcnn.pth'), dict(model=small))
    with dtypes_by_module_type() as seen:
        default = evaluate_model(config, checkpoint, 'float32')
    assert seen['Conv2d', 'output'] == {torch.float32}
    with dtypes_by_module_type() as seen:
        bf16 = evaluate_model(config, checkpoint, 'bf16', bf16=True)
    # The network ran in bf16 (the FLOP count's extra forward runs in float32) ...
    assert torch.bfloat16 in seen['Conv2d', 'output']
    assert seen['RoIAlign', 'input'] == {torch.float32}  # ... and mmcv's RoIAlign got float32
    assert set(bf16.metrics) == set(default.metrics) and 'bbox_mAP' in bf16.metrics
    assert all(0.0 <= value <= 100.0 for value in bf16.metrics.values())
    for name, value in default.metrics.items():  # bf16 rounding moves a figure a little only
        assert bf16.metrics[name] == pytest.approx(value, abs=2.0), name


@contextmanager
def dtypes_by_module_type():
    """(module class name, 'input' or 'output') -> the dtypes of the first tensor input and of a
    tensor output of every call, for every module of every model."""
    seen = defaultdict(set)

    def record(module, args, output):
        tensors = [arg for arg in args if isinstance(arg, torch.Tensor)]
        if tensors and tensors[0].is_floating_point():
            seen[type(module).__name__, 'input'].add(tensors[0].dtype)
        if isinstance(output, torch.Tensor) and output.is_floating_point():
            seen[type(module).__name__, 'output'].add(output.dtype)
    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        yield seen
    finally:
        handle.remove()
