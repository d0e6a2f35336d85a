"""The per-sample teacher-logits cache: same losses as without it, no teacher forward for cached
samples, and refusals where it cannot be exact."""

import pytest
import torch
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample

from mmkd_plugins.engine.hooks.teacher_cache_hook import check_pipeline_is_keyable
from mmkd_plugins.models.teachers import sample_key
from ..conftest import save_random_checkpoint
from ..support.classifiers import KD, build_distiller, make_batch
from ..support.detectors import RETINANET, batch_of, detector_cfg, distiller_for


def indexed_batch(indices, seed=0):
    batch = make_batch(batch_size=len(indices), seed=seed)
    for sample, index in zip(batch['data_samples'], indices):
        sample.set_metainfo(dict(sample_idx=index, img_shape=(16, 16)))
    return batch


class TeacherCalls:
    """Counts the teacher's backbone forwards and the batch size of each."""

    def __init__(self, teacher):
        self.batch_sizes = []
        teacher.backbone.register_forward_hook(
            lambda module, args, output: self.batch_sizes.append(args[0].shape[0]))


def distill_loss(model, batch, name='distill.loss_kd'):
    data = model.data_preprocessor(batch, training=False)
    return model(**data, mode='loss')[name]


def test_cached_classifier_logits_give_the_same_loss_without_teacher_forwards(
        teacher_checkpoint):
    cached, plain = build_distiller(teacher_checkpoint), build_distiller(teacher_checkpoint)
    plain.load_state_dict(cached.state_dict())
    cached.eval(), plain.eval()  # the same student outputs on both sides
    cache = cached.enable_teacher_cache()
    calls = TeacherCalls(cached.teacher)

    first, again = indexed_batch([0, 1, 2, 3]), indexed_batch([0, 1, 2, 3])
    mixed = indexed_batch([2, 7, 3, 8], seed=1)
    mixed['inputs'][0], mixed['inputs'][2] = first['inputs'][2], first['inputs'][3]
    for batch in (first, again, mixed):
        torch.testing.assert_close(distill_loss(cached, batch), distill_loss(plain, batch),
                                   rtol=0, atol=0)
    assert calls.batch_sizes == [4, 2]  # nothing for the repeated batch; only 7 and 8 later
    assert len(cache) == 6 and cache.hits == 6 and cache.misses == 6


def test_the_cache_is_kept_in_cpu_memory_within_its_bound(teacher_checkpoint):
    """Entries live on the CPU; once the next one would pass max_bytes none is stored, and the
    samples beyond the bound are computed again, with the same losses."""
    cached, plain = build_distiller(teacher_checkpoint), build_distiller(teacher_checkpoint)
    plain.load_state_dict(cached.state_dict())
    cached.eval(), plain.eval()
    cache = cached.enable_teacher_cache(max_bytes=3 * 10 * 4)  # three rows of 10 float32 logits
    calls = TeacherCalls(cached.teacher)
    batch = indexed_batch([0, 1, 2, 3, 4])
    for _ in range(2):
        torch.testing.assert_close(distill_loss(cached, batch), distill_loss(plain, batch),
                                   rtol=0, atol=0)
    assert len(cache) == 3 and cache.nbytes == 120 and cache.full
    assert all(entry.device.type == 'cpu' for entry in cache._store.values())
    assert calls.batch_sizes == [5, 2]  # samples 3 and 4 again: not cached
    assert cache.hits == 3 and cache.misses == 7


def test_cached_dense_class_maps_give_the_same_loss(tmp_path, shapes_root):
    init_default_scope('mmdet')
    checkpoint = save_random_checkpoint(RETINANET, str(tmp_path / 'retina.pth'))
    losses = dict(loss_kd=dict(type='KDLoss', tau=1.0, activation='sigmoid'))
    cached = distiller_for(detector_cfg(RETINANET), RETINANET, checkpoint, losses)
    plain = distiller_for(detector_cfg(RETINANET), RETINANET, checkpoint, losses)
    plain.load_state_dict(cached.state_dict())
    cached.eval(), plain.eval()
    cached.enable_teacher_cache()
    calls = TeacherCalls(cached.teacher)
    batch = batch_of(shapes_root)
    for _ in range(2):
        torch.testing.assert_close(distill_loss(cached, batch), distill_loss(plain, batch),
                                   rtol=0, atol=0)
    assert calls.batch_sizes == [4]


def test_the_key_holds_identity_and_recorded_augmentation():
    sample = DataSample(metainfo=dict(sample_idx=3, img_shape=(16, 16), flip=True,
                                      flip_direction='horizontal'))
    flipped_back = DataSample(metainfo=dict(sample_idx=3, img_shape=(16, 16), flip=False))
    assert sample_key(sample) != sample_key(flipped_back)
    assert sample_key(sample) == sample_key(DataSample(metainfo=dict(sample.metainfo)))
    with pytest.raises(KeyError, match=r"needs one of \('img_path', 'sample_idx', 'img_id'\)"):
        sample_key(DataSample(metainfo=dict(img_shape=(16, 16))))


def test_losses_on_named_modules_cannot_be_cached(teacher_checkpoint):
    by_name = dict(loss_kd=dict(KD['loss_kd'], student_output='head.fc',
                                teacher_output='head.fc'))
    model = build_distiller(teacher_checkpoint, losses=by_name)
    with pytest.raises(ValueError, match=r'holds logits only; model\.distill_losses\.loss_kd'):
        model.enable_teacher_cache()


def digits_dataset(root, *pipeline):
    from mmpretrain.datasets import CustomDataset
    return CustomDataset(data_root=root, ann_file='student_train.txt', pipeline=list(pipeline))


def test_pipelines_with_unrecorded_random_transforms_are_refused(digits_root):
    load, pack = dict(type='LoadImageFromFile'), dict(type='PackInputs')
    flip = dict(type='RandomFlip', prob=0.5)
    check_pipeline_is_keyable(digits_dataset(digits_root, load, flip, pack))
    with pytest.raises(ValueError, match=r"RandomResizedCrop draws random parameters"):
        check_pipeline_is_keyable(digits_dataset(
            digits_root, load, dict(type='RandomResizedCrop', scale=16), pack))
    with pytest.raises(ValueError, match=r"RandomFlip is keyed by \['flip', 'flip_direction'\]"):
        check_pipeline_is_keyable(digits_dataset(
            digits_root, load, flip, dict(type='PackInputs', meta_keys=('sample_idx', ))))


def concatenated_digits(digits_root, meta_keys=None) -> dict:
    """Two digits folders' splits in one ConcatDataset: both count sample_idx from 0."""
    pack = dict(type='PackInputs') if meta_keys is None else dict(type='PackInputs',
                                                                  meta_keys=meta_keys)
    pipeline = [dict(type='LoadImageFromFile'), pack]
    return dict(type='ConcatDataset', datasets=[
        dict(type='CustomDataset', data_root=digits_root, ann_file=f'{split}.txt',
             pipeline=pipeline) for split in ('student_train', 'teacher_train')])


def test_concatenated_datasets_never_share_cache_entries(teacher_checkpoint, digits_root):
    """Image i of the second part has the first part's sample_idx i: keyed by index it would get the
    other image's teacher logits."""
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(dict(
        batch_size=8, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
        collate_fn=dict(type='default_collate'), dataset=concatenated_digits(digits_root)))
    model = build_distiller(teacher_checkpoint)
    model.eval()
    cache = model.enable_teacher_cache()
    for batch in loader:
        data = model.data_preprocessor(batch, training=False)
        cached = model.run_teacher(data['inputs'], data['data_samples'])['logits']
        fresh = model.teacher_source.live.logits(data['inputs'], None, model.student_recorder)
        torch.testing.assert_close(cached, fresh, rtol=0, atol=0)
    assert len(cache) == len(loader.dataset) == 80 and cache.hits == 0


def test_concatenated_datasets_without_image_paths_are_refused(digits_root):
    from mmengine.dataset import ConcatDataset
    from mmpretrain.registry import DATASETS
    dataset = DATASETS.build(concatenated_digits(digits_root, meta_keys=('sample_idx', )))
    assert isinstance(dataset, ConcatDataset)
    with pytest.raises(ValueError, match='concatenates several datasets.*does not pack '
                       'img_path'):
        check_pipeline_is_keyable(dataset)


def test_a_wrapper_level_mosaic_is_refused(shapes_root):
    init_default_scope('mmdet')
    from mmdet.registry import DATASETS

    from ..conftest import shapes_dataset
    inner = shapes_dataset(shapes_root, 'train', [dict(type='LoadImageFromFile'),
                                                   dict(type='LoadAnnotations', with_bbox=True)])
    dataset = DATASETS.build(dict(
        type='MultiImageMixDataset', dataset=inner,
        pipeline=[dict(type='Mosaic', img_scale=(64, 64)), dict(type='PackDetInputs')]))
    with pytest.raises(ValueError, match=r"MultiImageMixDataset.pipeline's Mosaic draws random"):
        check_pipeline_is_keyable(dataset)


def test_enabling_the_cache_again_starts_an_empty_one(teacher_checkpoint):
    """A second ``enable_teacher_cache`` (a second run of the hook on one model) puts a new, empty
    cache in front of the same live teacher."""
    model = build_distiller(teacher_checkpoint).eval()
    first = model.enable_teacher_cache()
    distill_loss(model, indexed_batch([0, 1]))
    second = model.enable_teacher_cache()
    assert len(first) == 2 and second is not first and len(second) == 0
    calls = TeacherCalls(model.teacher)
    distill_loss(model, indexed_batch([0, 1]))
    assert calls.batch_sizes == [2] and len(second) == 2
