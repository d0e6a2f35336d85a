"""The soft-label store (FKD): logits rebuilt from stored top-k probabilities, views replayed
exactly, KD from the store equal to KD from the live teacher on the same view, the refusals of a
store made for something else, resumable and 2-process generation, training and exact resume."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DATASETS

from mmkd_plugins.models.losses import kd_loss
from mmkd_plugins.registry import MODELS
from mmkd_plugins.soft_labels import (VIEW_KEY, SoftLabelStore, logits_from_soft_labels,
                                      top_k_soft_labels, use_soft_label_store)
from mmkd_plugins.soft_labels.store import read_back, shard
from ..conftest import (REPO_ROOT, cfg_options_args, data_options, epochs_options, free_port,
                        mmpretrain_train_script, run_tool, scalars, tool_env)

STORED_CONFIG = str(REPO_ROOT / 'configs' / 'demo' / 'kd-stored_resnet18w32_resnet18w8_digits.py')
VIEWS = 4


def test_logits_from_all_classes_give_back_the_stored_distribution_at_any_temperature():
    """k = C: the rebuilt logits are tau_s · log p, the teacher's own up to a constant per row,
    so a loss at another temperature (a learned CTKD one) sees the teacher's distribution."""
    teacher = torch.tensor([[2.0, -1.0, 0.5, 0.0], [0.0, 3.0, -2.0, 1.0]])
    probabilities, classes = top_k_soft_labels(teacher, tau=4.0, top_k=4)
    assert probabilities.dtype == torch.float16
    assert torch.all(probabilities[:, :-1] >= probabilities[:, 1:])  # decreasing
    logits = logits_from_soft_labels(probabilities, classes, num_classes=4, tau=4.0)
    for tau in (4.0, 1.0, 15.6):
        assert torch.allclose(torch.softmax(logits / tau, dim=1),
                              torch.softmax(teacher / tau, dim=1), atol=2e-3)


def test_missing_classes_share_the_rest_of_the_mass_equally():
    """By hand, k < C: stored 0.5 (class 2) and 0.3 (class 0) leave 0.2 for classes 1 and 3."""
    probabilities = torch.tensor([[0.5, 0.3]])
    classes = torch.tensor([[2, 0]])
    logits = logits_from_soft_labels(probabilities, classes, num_classes=4, tau=2.0)
    assert torch.allclose(torch.softmax(logits / 2.0, dim=1),
                          torch.tensor([[0.3, 0.1, 0.5, 0.1]]), atol=1e-6)
    # a stored mass above 1 (float16 rounding) leaves 0 for the others, not a negative number
    logits = logits_from_soft_labels(torch.tensor([[0.7, 0.31]]), classes, 4, tau=1.0)
    assert torch.all(torch.isfinite(logits))
    assert torch.softmax(logits, dim=1)[0, [1, 3]].max() < 1e-30


def stored_options(digits_root, teacher, store):
    return dict(data_options(digits_root), **{'model.teacher.checkpoint': teacher,
                                               'model.soft_labels.store': store})


def make_store(store, digits_root, teacher, *args, check=True):
    return run_tool('make_soft_labels.py', STORED_CONFIG, '--views', str(VIEWS), '--top-k',
                    '10', *args, *cfg_options_args(stored_options(digits_root, teacher, store)),
                    check=check)


@pytest.fixture(scope='module')
def sharp_teacher(tmp_path_factory, trained_teacher):
    """The one-epoch demo teacher with its classifier scaled by 300: its logits differ clearly
    between views (the one-epoch teacher's are all near 0)."""
    checkpoint = torch.load(trained_teacher, weights_only=False)
    state_dict = {key: value * 300 if key.startswith('head.fc.') else value
                  for key, value in checkpoint['state_dict'].items()}
    path = str(tmp_path_factory.mktemp('sharp_teacher') / 'teacher.pth')
    torch.save(dict(state_dict=state_dict, meta={}), path)
    return path


@pytest.fixture(scope='module')
def digits_store(tmp_path_factory, digits_root, sharp_teacher):
    """A store of the tiny digits' 40 training images, 4 views each, all 10 classes."""
    store = str(tmp_path_factory.mktemp('store') / 'soft_labels')
    result = make_store(store, digits_root, sharp_teacher)
    assert '40 samples x 4 views, top-10 of 10 classes at tau=4.0' in result.stdout
    assert '169 bytes per sample' in result.stdout  # 4 · 10 · (2 + 2) + 9
    return store


def stored_config(digits_root, teacher, store, **options) -> Config:
    cfg = Config.fromfile(STORED_CONFIG)
    cfg.merge_from_dict(dict(stored_options(digits_root, teacher, store), **options))
    return cfg


def packed_batch(cfg: Config, indices):
    """Samples of the training set through its (store-replaying) pipeline."""
    use_soft_label_store(cfg)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    return pseudo_collate([dataset[index] for index in indices])


def test_kd_from_the_store_equals_kd_from_the_live_teacher_on_the_replayed_view(
        digits_store, digits_root, sharp_teacher):
    """The training pipeline replays a stored view exactly: the live teacher on the image it
    produced gives the logits the store holds for that view (k = C: to float16 rounding)."""
    cfg = stored_config(digits_root, sharp_teacher, digits_store)
    stored_model = MODELS.build(cfg.model)
    live_cfg = stored_config(digits_root, sharp_teacher, digits_store)
    live_cfg.model.pop('soft_labels')
    live_model = MODELS.build(live_cfg.model)
    batch = stored_model.data_preprocessor(packed_batch(cfg, range(12)), training=True)
    views = [sample.metainfo[VIEW_KEY] for sample in batch['data_samples']]
    assert all(0 <= view < VIEWS for view in views) and len(set(views)) > 1
    stored = stored_model.run_teacher(batch['inputs'], batch['data_samples'])['logits']
    live = live_model.run_teacher(batch['inputs'], batch['data_samples'])['logits']
    assert torch.allclose(torch.softmax(stored / 4, dim=1), torch.softmax(live / 4, dim=1),
                          atol=1e-3)
    student = torch.randn(12, 10, requires_grad=True)
    assert kd_loss(student, stored, 4.0).item() == pytest.approx(
        kd_loss(student, live, 4.0).item(), rel=5e-3)
    # a view other than the replayed one has other probabilities: the check can fail
    for sample in batch['data_samples']:
        sample.set_metainfo({VIEW_KEY: (sample.metainfo[VIEW_KEY] + 1) % VIEWS})
    shifted = stored_model.run_teacher(batch['inputs'], batch['data_samples'])['logits']
    assert not torch.allclose(torch.softmax(shifted / 4, 1), torch.softmax(live / 4, 1),
                              atol=1e-2)
    losses = stored_model.loss(batch['inputs'], batch['data_samples'])
    assert losses['distill.loss_kd'] > 0 and torch.isfinite(losses['distill.loss_kd'])


def copy_of_store(store: str, tmp_path, unwritten_from=None, **header_changes) -> str:
    """A copy of ``store`` whose samples from ``unwritten_from`` on are unwritten (zeroed and not
    done, the store incomplete), with ``header_changes`` in its header."""
    copy = str(tmp_path / 'store')
    shutil.copytree(store, copy)
    if unwritten_from is not None:
        for name in ('probabilities', 'classes', 'done'):
            array = np.load(os.path.join(copy, f'{name}.npy'), mmap_mode='r+')
            array[unwritten_from:] = 0
            array.flush()
        header_changes.setdefault('complete', False)
    with open(os.path.join(copy, 'header.json')) as file:
        header = dict(json.load(file), **header_changes)
    with open(os.path.join(copy, 'header.json'), 'w') as file:
        json.dump(header, file)
    return copy


def test_each_process_makes_a_contiguous_share():
    """Rows of different processes share file pages only at the shards' borders."""
    shares = [list(shard(rank, 3, 10)) for rank in range(3)]
    assert shares == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]


def test_rows_lost_after_writing_are_found_when_read_back_and_made_again(
        digits_store, digits_root, sharp_teacher, tmp_path):
    """A sample marked done whose row reads back as zeros (a write the file system lost) makes the
    store incomplete with the sample unmarked; running the tool again makes it, equal to the
    original."""
    copy = copy_of_store(digits_store, tmp_path)
    for name in ('probabilities', 'sample_ids'):
        array = np.load(os.path.join(copy, f'{name}.npy'), mmap_mode='r+')
        array[7] = 0
        array.flush()
        del array
    with open(os.path.join(copy, 'header.json')) as file:
        store = SoftLabelStore(copy, json.load(file), writable=True)
    assert store.mark_complete().tolist() == [7]  # what the tool does once all have written
    assert store.arrays['done'][7] == 0 and store.arrays['done'].sum() == 39
    del store
    with pytest.raises(ValueError, match=r'incomplete \(1 of 40 samples'):
        SoftLabelStore.open(copy, 'store')
    output = make_store(copy, digits_root, sharp_teacher).stdout
    assert '1 samples made here' in output and 'complete, the top-10 hold' in output
    original, remade = SoftLabelStore.open(digits_store, 'a'), SoftLabelStore.open(copy, 'b')
    assert np.array_equal(remade.arrays['classes'], original.arrays['classes'])
    assert np.array_equal(remade.arrays['sample_ids'], original.arrays['sample_ids'])
    assert np.allclose(remade.arrays['probabilities'], original.arrays['probabilities'],
                       atol=1e-3)


def test_the_teacher_is_never_built_or_loaded(digits_store, digits_root, tmp_path):
    """With a store, the teacher's checkpoint need not even exist here."""
    stored_teacher = SoftLabelStore.open(digits_store, 'store').header['teacher']
    copy = copy_of_store(digits_store, tmp_path, teacher=dict(
        stored_teacher, checkpoint='elsewhere/teacher.pth'))
    cfg = stored_config(digits_root, 'elsewhere/teacher.pth', copy)
    model = MODELS.build(cfg.model)
    assert model.teacher is None and model.teachers == {'teacher': None}
    batch = model.data_preprocessor(packed_batch(cfg, range(4)), training=True)
    losses = model.loss(batch['inputs'], batch['data_samples'])
    losses['distill.loss_kd'].backward()
    assert model.student.head.fc.weight.grad.abs().sum() > 0


def test_an_ema_copy_of_the_model_shares_the_file_backed_store(digits_store, digits_root,
                                                                sharp_teacher):
    """EMAHook deep-copies the model: the copy must read the same memory maps (a deep copy of a
    memory-mapped array is an in-memory array holding the whole store, in every process)."""
    from mmengine.model import ExponentialMovingAverage
    model = MODELS.build(stored_config(digits_root, sharp_teacher, digits_store).model)
    averaged = ExponentialMovingAverage(model, momentum=0.5).module
    store = model.teacher_source.store
    assert averaged.teacher_source.store is store
    assert all(isinstance(array, np.memmap) for array in store.arrays.values())
    assert averaged.student is not model.student  # the rest is still copied


def test_a_learned_global_temperature_gets_a_gradient_from_the_stored_soft_labels(
        digits_store, digits_root, sharp_teacher):
    """CTKD: a learned temperature re-softens the rebuilt logits; it gets a gradient."""
    cfg = stored_config(digits_root, sharp_teacher, digits_store, **{
        'model.distill_losses.loss_kd.tau': dict(_delete_=True, type='CurriculumTemperature',
                                                 mode='global', init_tau=8.0,
                                                 warmup_epochs=0)})
    model = MODELS.build(cfg.model)
    batch = model.data_preprocessor(packed_batch(cfg, range(8)), training=True)
    model.loss(batch['inputs'], batch['data_samples'])['distill.loss_kd'].backward()
    assert model.distill_losses.loss_kd.temperature.theta.grad != 0


@pytest.mark.parametrize('options, match', [
    ({'model.teacher.checkpoint': 'RANDOM_TEACHER'}, r'another teacher.*checkpoint: SHA-256'),
    ({'model.distill_losses.loss_kd.tau': 2.0},
     r'model\.distill_losses\.loss_kd\.tau: the store .* tau=4\.0'),
    ({'model.distill_losses.loss_kd.tau': dict(_delete_=True, type='CurriculumTemperature',
                                               mode='instance', num_classes=10)},
     r'instance-wise'),
    ({'model.student.data_preprocessor.batch_augments': dict(
        augments=[dict(type='Mixup', alpha=0.2)])}, r'batch_augments'),
], ids=['teacher', 'temperature', 'instance-ctkd', 'mixup'])
def test_a_store_for_another_setting_is_refused_at_build_time(
        digits_store, digits_root, sharp_teacher, teacher_checkpoint, options, match):
    if options.get('model.teacher.checkpoint') == 'RANDOM_TEACHER':
        options = {'model.teacher.checkpoint': teacher_checkpoint}
    cfg = stored_config(digits_root, sharp_teacher, digits_store, **options)
    with pytest.raises(ValueError, match=match):
        MODELS.build(cfg.model)


def test_a_store_for_other_transforms_or_another_dataset_is_refused(
        digits_store, digits_root, sharp_teacher):
    cfg = stored_config(digits_root, sharp_teacher, digits_store)
    cfg.train_dataloader.dataset.pipeline[1]['crop_ratio_range'] = (0.3, 1.0)
    with pytest.raises(ValueError, match=r"pipeline: the store .* transform 0 is .*0\.3"):
        use_soft_label_store(cfg)
    cfg = stored_config(digits_root, sharp_teacher, digits_store,
                        **{'train_dataloader.dataset.ann_file': 'teacher_train.txt'})
    with pytest.raises(ValueError, match='the store was made for another dataset'):
        packed_batch(cfg, [0])


def test_the_header_records_the_kept_probability_mass(digits_store):
    """The mean and the minimum of the stored top-k's probability sums over all views: by hand for a
    small array, and 1 (to float16 rounding) for the digits store, which keeps all 10 classes."""
    probabilities = np.array([[[0.5, 0.25], [0.75, 0.125]], [[0.5, 0.5], [0.25, 0.25]]],
                             dtype=np.float16)  # (N=2, K=2, k=2): sums .75 .875 1 .5
    lost, mass = read_back(probabilities, np.ones(2), np.ones(2), samples_per_chunk=1)
    assert mass == dict(mean=0.78125, min=0.5) and lost.tolist() == []
    stored = SoftLabelStore.open(digits_store, 'store').header['kept_mass']
    assert stored['mean'] == pytest.approx(1, abs=2e-3)
    assert stored['min'] == pytest.approx(1, abs=5e-3)


def test_dists_intra_class_term_needs_every_class_in_the_store(digits_store, digits_root,
                                                              sharp_teacher, tmp_path):
    """From a top-3 store of 10 classes the intra-class columns are mostly made up: refused, naming
    top_k, unless accepted; the inter-class term alone (gamma=0) is not refused."""
    top_3 = copy_of_store(digits_store, tmp_path, top_k=3)

    def build(gamma: float, **soft_labels):
        cfg = stored_config(digits_root, sharp_teacher, top_3, **{
            'model.distill_losses': dict(_delete_=True, loss_dist=dict(
                type='DISTLoss', tau=4.0, gamma=gamma)),
            'model.soft_labels': dict(store=top_3, **soft_labels)})
        return MODELS.build(cfg.model)

    with pytest.raises(ValueError, match=r'model\.distill_losses\.loss_dist\.gamma: DIST\'s '
                       r'intra-class term .* keeps top_k=3 of 10 classes .* --top-k 10, set '
                       r'gamma=0, or .* model\.soft_labels\.allow_partial_intra_class=True'):
        build(1.0)
    build(0.0)
    build(1.0, allow_partial_intra_class=True)


def test_an_incomplete_store_is_refused(digits_store, digits_root, sharp_teacher, tmp_path):
    copy = copy_of_store(digits_store, tmp_path, unwritten_from=5)
    with pytest.raises(ValueError, match=r'incomplete \(35 of 40 samples'):
        MODELS.build(stored_config(digits_root, sharp_teacher, copy).model)


def test_a_stopped_generation_goes_on_and_ends_with_the_same_store(
        digits_store, digits_root, sharp_teacher, tmp_path):
    """The rows of unfinished samples are made again, equal to an uninterrupted run's; a folder
    holding a store of another setting is refused."""
    copy = copy_of_store(digits_store, tmp_path, unwritten_from=17)
    result = make_store(copy, digits_root, sharp_teacher)
    assert '23 samples made here' in result.stdout and 'complete' in result.stdout
    for name in ('probabilities', 'classes', 'sample_ids', 'done'):
        assert np.array_equal(np.load(os.path.join(copy, f'{name}.npy')),
                              np.load(os.path.join(digits_store, f'{name}.npy')))
    other = run_tool('make_soft_labels.py', STORED_CONFIG, '--views', '3', *cfg_options_args(
        stored_options(digits_root, sharp_teacher, copy)), check=False)
    assert other.returncode != 0 and 'another setting (views: the store has 4' in other.stderr


def test_two_processes_make_the_store_and_train_from_it(digits_store, digits_root,
                                                        sharp_teacher, tmp_path):
    """Each rank makes its share of one store (the same labels as one process, up to the teacher's
    float round-off in other batch sizes); two ranks then train from it."""
    store = str(tmp_path / 'store')
    env = dict(tool_env(), MASTER_PORT=str(free_port()))
    result = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
         '--master_port', env['MASTER_PORT'], 'tools/make_soft_labels.py', STORED_CONFIG,
         '--views', str(VIEWS), '--top-k', '10', '--launcher', 'pytorch',
         *cfg_options_args(stored_options(digits_root, sharp_teacher, store))],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert '20 samples made here' in result.stdout  # rank 0's share
    one, two = SoftLabelStore.open(digits_store, 'one'), SoftLabelStore.open(store, 'two')
    assert two.header['complete'] and np.array_equal(two.arrays['sample_ids'],
                                                     one.arrays['sample_ids'])
    assert np.array_equal(two.arrays['classes'][..., 0], one.arrays['classes'][..., 0])
    assert np.allclose(two.arrays['probabilities'], one.arrays['probabilities'], atol=2e-3)

    work_dir = str(tmp_path / 'ddp')
    options = dict(epochs_options(digits_root, 1), **{
        'model.teacher.checkpoint': sharp_teacher, 'model.soft_labels.store': store,
        'train_dataloader.batch_size': 8})
    env = dict(tool_env(), PORT=str(free_port()), PYTHON=sys.executable)
    result = subprocess.run(['bash', 'tools/dist_train.sh', STORED_CONFIG, '2', '--work-dir',
                             work_dir, *cfg_options_args(options)], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    kd = [line['distill.loss_kd'] for line in scalars(work_dir) if 'distill.loss_kd' in line]
    assert kd and all(0 < loss < float('inf') for loss in kd)


def test_training_from_the_store_resumes_exactly_and_exports_the_stock_student(
        digits_store, digits_root, sharp_teacher, tmp_path):
    """One config, two entry points, the same experiment: trained straight through this project's
    tools/train.py, and interrupted and resumed through mmpretrain's own (what ``mim train`` runs),
    whose runner is the config's DistillationRunner (it makes the pipeline replay the store and
    passes the seed on); the losses after the resume are the same."""

    def run_stock_script(*args):
        result = subprocess.run([sys.executable, mmpretrain_train_script(), STORED_CONFIG, *args],
                                cwd=REPO_ROOT, env=tool_env(), capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-4000:]

    def options(epochs):
        return dict(epochs_options(digits_root, epochs), **{
            'model.teacher.checkpoint': sharp_teacher, 'model.soft_labels.store': digits_store,
            'train_dataloader.batch_size': 8, 'default_hooks.logger.interval': 1,
            'randomness.seed': 0})

    def losses(work_dir):
        return [(line['step'], line['loss']) for line in scalars(work_dir)
                if 'distill.loss_kd' in line]

    straight, resumed = str(tmp_path / 'straight'), str(tmp_path / 'resumed')
    run_tool('train.py', STORED_CONFIG, '--work-dir', straight, *cfg_options_args(options(2)))
    run_stock_script('--work-dir', resumed, *cfg_options_args(options(1)))
    run_stock_script('--work-dir', resumed, '--resume', *cfg_options_args(options(2)))
    expected = [line for line in losses(straight) if line[0] > 5]
    assert len(expected) == 5
    after_resume = losses(resumed)[-5:]
    assert [step for step, _ in after_resume] == [step for step, _ in expected]
    assert [loss for _, loss in after_resume] == pytest.approx(
        [loss for _, loss in expected], rel=1e-5)
    exported = Config.fromfile(os.path.join(straight, 'student_config.py'))
    pipeline = exported.train_dataloader.dataset.pipeline
    assert [transform['type'] for transform in pipeline] == [
        'LoadImageFromFile', 'RandomResizedCrop', 'Rotate', 'PackInputs']
    assert VIEW_KEY not in str(pipeline) and 'soft_labels' not in exported.model
    assert 'runner_type' not in exported
