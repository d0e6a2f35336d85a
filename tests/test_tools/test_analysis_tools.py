"""tools/analysis/compare.py, plot_curves.py and check_teacher_options.py on tiny real runs, and
their building blocks against hand-computed references."""

import csv
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmkd_plugins.analysis import (EpochCurves, as_student_terms, curve_bands, evaluate_model,
                                   read_epoch_curves, sigmoid_agreement, softmax_agreement)
from ..conftest import (STUDENT_CONFIG, TEACHER_CONFIG, cfg_options_args, data_options, run_tool,
                        save_random_checkpoint)
from ..support.classifiers import assert_bf16_close
from ..support.loss_references import (as_float64, pearson_and_gradient, reference_binary_kd,
                                       reference_kd, softmax)
from ..support.runs import option_rows


def test_softmax_agreement_is_the_mean_kl_pearson_and_top1_agreement_of_the_rows():
    torch.manual_seed(0)
    teacher, student = torch.randn(6, 4), torch.randn(6, 4)
    result = softmax_agreement(teacher, student)
    pearsons, _ = pearson_and_gradient(softmax(as_float64(student)), softmax(as_float64(teacher)))
    same = (teacher.argmax(dim=1) == student.argmax(dim=1)).float().mean().item()
    assert result['top1_agreement'] == pytest.approx(same)
    assert result['mean_kl'] == pytest.approx(reference_kd(student, teacher, 1.0), rel=1e-5)
    assert result['mean_pearson'] == pytest.approx(pearsons.mean(), rel=1e-5)


def test_sigmoid_agreement_counts_only_the_teachers_confident_positions():
    teacher = torch.tensor([[3.0, -3.0], [-3.0, 3.0], [-3.0, -3.0]])  # last: background
    student = torch.tensor([[2.0, -1.0], [1.0, -1.0], [5.0, -3.0]])
    result = sigmoid_agreement(teacher, student)
    assert result['top1_agreement'] == pytest.approx(0.5)  # rows 1 and 2 count; row 1 agrees
    assert result['mean_kl'] == pytest.approx(reference_binary_kd(student, teacher, 1.0),
                                              rel=1e-5)
    assert sigmoid_agreement(teacher, teacher)['mean_kl'] == pytest.approx(0.0, abs=1e-6)


def test_epoch_curves_are_the_means_of_each_epochs_logged_values(tmp_path):
    lines = [dict(epoch=1, iter=1, step=1, loss=4.0, **{'distill.loss_kd': 1.0, 'lr': 0.1}),
             dict(epoch=1, iter=2, step=2, loss=2.0, **{'distill.loss_kd': 3.0, 'lr': 0.1}),
             {'accuracy/top1': 50.0, 'step': 1},
             dict(epoch=2, iter=3, step=3, loss=1.0, **{'distill.loss_kd': 0.5, 'lr': 0.1}),
             {'accuracy/top1': 75.0, 'step': 2}]
    log = tmp_path / 'scalars.json'
    log.write_text('\n'.join(json.dumps(line) for line in lines))
    curves = read_epoch_curves(str(log))
    assert curves.losses == {'loss': {1: 3.0, 2: 1.0}, 'distill.loss_kd': {1: 2.0, 2: 0.5}}
    assert curves.metrics == {'accuracy/top1': {1: 50.0, 2: 75.0}}


def test_curve_bands_are_mean_min_and_max_over_the_epochs_every_seed_logged():
    seeds = [EpochCurves(losses={'loss': {1: 3.0, 2: 1.0, 3: 0.5}},
                         metrics={'coco/bbox_mAP': {8: 0.2, 16: 0.5}}),
             EpochCurves(losses={'loss': {1: 5.0, 2: 2.0}, 'distill.loss_kd': {1: 1.0}},
                         metrics={'coco/bbox_mAP': {8: 0.4, 16: 0.6}})]
    bands = curve_bands(seeds)
    assert set(bands) == {'loss', 'coco/bbox_mAP'}  # a term one seed lacks is left out
    assert bands['loss'].epochs == [1, 2]  # epoch 3: one seed only
    assert bands['loss'].mean == [4.0, 1.5]
    assert bands['loss'].low == [3.0, 1.0] and bands['loss'].high == [5.0, 2.0]
    assert bands['coco/bbox_mAP'].mean == pytest.approx([0.3, 0.55])


def test_a_baselines_terms_join_the_students_panels():
    baseline = EpochCurves(losses={'loss': {1: 2.0}, 'loss_cls': {1: 1.5}},
                           metrics={'coco/bbox_mAP': {1: 0.1}})
    renamed = as_student_terms(baseline)
    assert renamed.losses == {'loss': {1: 2.0}, 'student.loss_cls': {1: 1.5}}
    assert renamed.metrics == baseline.metrics
    distilled = EpochCurves(losses={'loss': {1: 3.0}, 'student.loss_cls': {1: 1.0},
                                    'distill.loss_kd': {1: 2.0}})
    assert as_student_terms(distilled) is distilled


def test_compare_writes_tables_and_figures_that_match_the_test_tool(tmp_path, digits_root,
                                                                    trained_teacher):
    student = save_random_checkpoint(STUDENT_CONFIG, str(tmp_path / 'student.pth'))
    options = cfg_options_args(data_options(digits_root))
    metrics_file = str(tmp_path / 'metrics.json')
    run_tool('test.py', TEACHER_CONFIG, trained_teacher, '--work-dir', str(tmp_path), '--out',
             metrics_file, *options)
    report = str(tmp_path / 'report')
    run_tool(osp.join('analysis', 'compare.py'),
             '--model', TEACHER_CONFIG, trained_teacher, 'teacher',
             '--model', STUDENT_CONFIG, student, 'student',
             '--model', TEACHER_CONFIG, trained_teacher, 'teacher again',
             '--out', report, *options)
    for name in ('comparison.md', 'comparison.csv', 'per_class.png', 'confusion_matrices.png'):
        assert osp.getsize(osp.join(report, name)) > 0, name
    with open(osp.join(report, 'comparison.csv')) as file:
        rows = {row['model']: row for row in csv.DictReader(file)}
    assert list(rows) == ['teacher', 'student', 'teacher again']
    with open(metrics_file) as file:
        expected_top1 = json.load(file)['accuracy/top1']
    assert float(rows['teacher']['top1']) == pytest.approx(expected_top1, abs=1e-4)
    assert float(rows['teacher']['params_M']) == pytest.approx(2.798, abs=1e-3)
    assert float(rows['student']['params_M']) == pytest.approx(0.1764, abs=1e-4)
    # The teacher compared with itself agrees exactly.
    assert float(rows['teacher again']['top1_agreement']) == 1.0
    assert float(rows['teacher again']['mean_kl']) == pytest.approx(0.0, abs=1e-6)
    assert float(rows['teacher again']['mean_pearson']) == pytest.approx(1.0, abs=1e-5)
    assert 0 <= float(rows['student']['top1_agreement']) <= 1
    assert float(rows['student']['mean_kl']) > 0
    markdown = (tmp_path / 'report' / 'comparison.md').read_text()
    assert '| teacher again |' in markdown and 'top1_agreement' in markdown


def test_plot_curves_draws_the_runs_of_the_tools(tmp_path, trained_teacher):
    run_dir = osp.dirname(trained_teacher)
    out = str(tmp_path / 'curves.png')
    result = run_tool(osp.join('analysis', 'plot_curves.py'), f'{run_dir}:one',
                      f'{run_dir}:two', '--out', out, '--keys', 'loss', 'accuracy/*')
    assert osp.getsize(out) > 10_000 and 'wrote' in result.stdout
    seeds_out = str(tmp_path / 'seeds.png')  # one label twice: one band of two seeds
    run_tool(osp.join('analysis', 'plot_curves.py'), f'{run_dir}:one', f'{run_dir}:one',
             '--out', seeds_out, '--keys', 'loss', 'accuracy/*')
    assert osp.getsize(seeds_out) > 10_000
    curves = read_epoch_curves(run_dir)
    assert set(curves.losses) == {'loss'} and 1 in curves.losses['loss']
    assert set(curves.metrics) == {'accuracy/top1'}


def test_the_teacher_option_check_reports_each_options_accuracy_change_against_float32(
        digits_root, trained_teacher):
    options = data_options(digits_root)
    config = Config.fromfile(TEACHER_CONFIG)
    config.merge_from_dict(options)
    default = evaluate_model(config, trained_teacher, 'float32')
    bf16 = evaluate_model(config, trained_teacher, 'bf16', bf16=True)
    assert_bf16_close(bf16.logits, default.logits)

    result = run_tool(osp.join('analysis', 'check_teacher_options.py'), TEACHER_CONFIG,
                      trained_teacher, '--tolerance', '0', *cfg_options_args(options))
    rows = option_rows(result.stdout)
    assert list(rows) == ['float32', 'channels_last', 'bf16', 'channels_last+bf16']
    assert rows['float32'] == (pytest.approx(default.metrics['top1'], abs=0.005), 0.0, 'yes')
    assert rows['bf16'][0] == pytest.approx(bf16.metrics['top1'], abs=0.005)
    for value, change, verdict in rows.values():
        assert change == pytest.approx(value - rows['float32'][0], abs=0.011)
        assert verdict == ('yes' if change == 0 else 'no')


@pytest.mark.parametrize('tool', ['compare.py', 'plot_curves.py', 'check_teacher_options.py'])
def test_analysis_tools_have_help(tool):
    result = run_tool(osp.join('analysis', tool), '--help')
    assert 'usage:' in result.stdout and 'Example' in result.stdout
