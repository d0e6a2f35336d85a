"""The model-zoo sweep: its config changes, and a fixed subset of families run through it.

The subset has one family per failure kind the sweep was written to find (a head with its own
distillation mode, a head that returns probabilities, a detector with its own hooks, EMA and batch
augments) and two families that distill with every method. The whole sweep (hours) is run by hand;
its table is ``docs/zoo_coverage.md``.
"""

import json
import os.path as osp

import pytest
from mmengine.config import Config
from zoo.case_configs import generated_dataset, halve_scales, without_pretrained
from zoo.case_runner import stock_outcome
from zoo.planning import choose_pair, config_tree, families, input_geometry

from ..conftest import REPO_ROOT, run_tool  # (it puts .dev_scripts, for zoo above, on the path)

# (A 384-px Swin teacher for a 224-px student and a Cascade R-CNN student, which the sweep
# found failing, are tested in tests/test_models/test_distiller.py and test_detection.py on
# real models: the suite's time goes here to the cases nothing else runs end to end.)
# Teachers up to 40 M parameters: the suite sweeps the paths, not the sizes. One family per zoo,
# two cases at a time: LeViT (a head with a distillation classifier, a fixed input size, a
# teacher of another size) and YOLOX (its own hooks, EMA, batch resizing and mosaic wrapper).
# Dense heads whose scores are probabilities (TOOD) are checked in test_dense_head_scores.py.
SUBSET = ('mmpretrain/levit', 'mmdet/yolox')


def test_the_teacher_is_the_biggest_model_of_the_students_input_geometry():
    """Block-wise pairs stage states of one shape: a 224-px Swin-T student gets the 224-px Swin-B
    teacher, not the 384-px one with more parameters (the sweep of 2026-12-06 paired them and block-
    wise was refused); families of CNNs, which fix no size, are unchanged."""
    swin = osp.join(config_tree('mmpretrain'), 'swin_transformer')
    assert input_geometry(Config.fromfile(osp.join(swin, 'swin-base_16xb64_in1k-384px.py')).model
                          ) == ((384, 384), None)
    assert input_geometry(dict(backbone=dict(type='ViT', img_size=224, patch_size=(16, 16)))
                          ) == ((224, 224), (16, 16))

    def described(config, params, geometry):
        return dict(config=config, params=params, geometry=geometry)

    tiny = described('swin-tiny.py', 28e6, ((224, 224), None))
    base = described('swin-base.py', 87e6, ((224, 224), None))
    base_384 = described('swin-base-384px.py', 88e6, ((384, 384), None))
    large = described('swin-large.py', 196e6, ((224, 224), None))
    assert choose_pair([large, base_384, base, tiny], 1e8) == (tiny, base)
    assert choose_pair([base_384, tiny], 1e8) == (tiny, tiny)  # none other of its size
    cnn = [described('r18.py', 11e6, (None, None)), described('r50.py', 25e6, (None, None))]
    assert choose_pair(cnn, 1e8) == (cnn[0], cnn[1])
    assert choose_pair(cnn, 1e7) == (cnn[0], cnn[0])  # no teacher fits: the student


def test_image_scales_are_halved_to_multiples_of_32_and_borders_exactly():
    pipeline = [dict(type='Resize', scale=(1333, 800), keep_ratio=True),
                dict(type='RandomAffine', border=(-320, -320), max_rotate_degree=10.0),
                dict(type='Pad', size=(640, 640), pad_val=dict(img=(114, 114, 114))),
                dict(type='RandomChoiceResize', scales=[(1333, 640), (1333, 800)]),
                dict(type='RandomFlip', prob=0.5)]
    halved = halve_scales(dict(pipeline=pipeline,
                               batch_augments=[dict(type='BatchSyncRandomResize',
                                                    random_size_range=(480, 800))]))
    assert halved['pipeline'][0]['scale'] == (672, 384)  # 666.5 and 400 to multiples of 32
    assert halved['pipeline'][1]['border'] == (-160, -160)
    assert halved['pipeline'][1]['max_rotate_degree'] == 10.0
    assert halved['pipeline'][2]['size'] == (320, 320)
    assert halved['pipeline'][2]['pad_val'] == dict(img=(114, 114, 114))
    assert halved['pipeline'][3]['scales'] == [(672, 320), (672, 384)]
    assert halved['pipeline'][4]['prob'] == 0.5
    assert halved['batch_augments'][0]['random_size_range'] == (256, 384)


def test_pretrained_weights_are_dropped_and_other_inits_kept():
    model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='torchvision://x')),
                 neck=dict(init_cfg=[dict(type='Kaiming', layer='Conv2d')]),
                 head=dict(pretrained='open-mmlab://y', num_classes=3))
    cleaned = without_pretrained(model)
    assert cleaned == dict(backbone=dict(init_cfg=None),
                           neck=dict(init_cfg=[dict(type='Kaiming', layer='Conv2d')]),
                           head=dict(num_classes=3))


def test_wrapped_datasets_read_the_generated_data_and_keep_their_pipelines():
    inner = dict(type='CocoDataset', data_root='data/coco/', ann_file='a.json',
                 pipeline=[dict(type='LoadImageFromFile')])
    wrapped = dict(type='MultiImageMixDataset', pipeline=[dict(type='Mosaic')],
                   dataset=dict(type='ConcatDataset', datasets=[inner, inner]))
    swapped = generated_dataset(wrapped, 'one-stage', '/generated')
    assert swapped['pipeline'] == [dict(type='Mosaic')]
    for leaf in swapped['dataset']['datasets']:
        assert (leaf['type'], leaf['data_root'], leaf['ann_file']) == (
            'CocoDataset', '/generated', 'annotations/train.json')
        assert leaf['pipeline'] == [dict(type='LoadImageFromFile')]


def test_a_stock_run_with_non_finite_losses_is_a_stock_failure():
    """A stock config without our NaN-stopping hook runs to its end through NaN losses (HRNet
    from scratch: 7e7 at iteration 1, NaN at 2): exiting with 0 is not training."""
    finite = dict(returncode=0, exception=None, scalars=[
        dict(loss=2.5, loss_cls=1.5, lr=0.1, iter=1), dict(loss=2.0, loss_cls=1.0, iter=2)])
    assert stock_outcome(finite) == dict(status='ok')
    exploded = dict(returncode=0, exception=None, scalars=[
        dict(loss=7e7, loss_cls=3.8e7, iter=1),
        dict(loss=float('nan'), loss_cls=float('nan'), acc=25.0, iter=2)])
    assert stock_outcome(exploded) == dict(
        status='failed', where='the stock config, no distillation',
        message='non-finite losses at iteration 2: loss, loss_cls')
    crashed = dict(returncode=1, scalars=[], exception=dict(message='KeyError: x',
                                                            where='mmdet/a.py:1 (f)'))
    assert stock_outcome(crashed)['status'] == 'failed'


@pytest.fixture(scope='module')
def swept(tmp_path_factory):
    """Sweep the subset once (two cases at a time); the results per family and the table."""
    work_dir = tmp_path_factory.mktemp('zoo_sweep')
    table = work_dir / 'coverage.md'
    run_tool('zoo_sweep.py', '--families', *SUBSET, '--work-dir', str(work_dir),
             '--results-dir', str(work_dir / 'results'), '--out', str(table),
             '--max-teacher-params', '4e7', '--jobs', '2', '--threads', '1',
             folder='.dev_scripts')
    results = {}
    for path in (work_dir / 'results').glob('*.json'):
        result = json.loads(path.read_text())
        results[f"{result['zoo']}/{result['family']}"] = result
    return results, table.read_text()


def statuses(result: dict) -> dict:
    return {stage: outcome['status'] for stage, outcome in result['stages'].items()}


@pytest.mark.parametrize('family,blockwise', [
    ('mmpretrain/levit', 'ok'),  # a head with a distillation classifier; a fixed input size
    # its own hooks, EMA, batch resizing and mosaic wrapper; its block-wise run with a random
    # teacher diverges in the first step (docs/zoo_coverage_notes.md), not checked here
    ('mmdet/yolox', None),
])
def test_each_swept_family_distills_with_kd_and_dist_and_exports(swept, family, blockwise):
    results, _ = swept
    result = results[family]
    expected = dict(kd='ok', dist='ok', export='ok', blockwise=blockwise)
    if blockwise is None:
        expected.pop('blockwise')
    assert {stage: status for stage, status in statuses(result).items()
            if stage in expected} == expected
    for stage in ('kd', 'dist'):
        assert result['stages'][stage]['value'] > 0


def test_the_levit_case_distills_into_a_student_other_than_its_teacher(swept):
    results, _ = swept
    assert results['mmpretrain/levit']['student'] != results['mmpretrain/levit']['teacher']


def test_the_table_counts_and_lists_every_swept_family(swept):
    results, table = swept
    for family in SUBSET:
        assert f'| {family.split("/")[1]} |' in table
    assert '1 swept, 1 distill, 0 refused with a message, 0 fail' in table  # mmpretrain
    assert '1 swept, 1 distill, 0 refused with a message, 0 fail' in table.split('## mmdet')[1]
    assert 'Not swept yet' in table


def test_the_committed_table_covers_every_family_of_the_installed_trees():
    """docs/zoo_coverage.md (the full sweep, run by hand) names each family of the installed
    config trees: in its table, as not attempted, or as not swept yet."""
    table = (REPO_ROOT / 'docs' / 'zoo_coverage.md').read_text()
    import mmdet
    import mmpretrain
    swept_with = f'mmpretrain {mmpretrain.__version__}, mmdet {mmdet.__version__})'
    if swept_with not in table.splitlines()[2]:
        pytest.skip(f'the committed sweep is of other config trees than the installed ones '
                    f'({swept_with[:-1]}): its header says which')
    for zoo, section in zip(('mmpretrain', 'mmdet'), table.split('## ')[1:]):
        assert section.startswith(zoo)
        for family in families(zoo):
            assert (f'| {family} |' in section or f'- {family}:' in section
                    or f' {family},' in section or f' {family}.' in section), (zoo, family)
