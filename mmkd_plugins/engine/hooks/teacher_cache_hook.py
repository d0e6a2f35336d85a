"""Compute the teacher's logits once per training sample and reuse them in later epochs."""
from typing import List, Tuple

from mmengine.dataset import BaseDataset
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from mmkd_plugins.registry import HOOKS

# Transforms whose output is fixed for a given input image.
DETERMINISTIC_TRANSFORMS = frozenset({
    'LoadImageFromFile', 'LoadAnnotations', 'Resize', 'ResizeEdge', 'CenterCrop', 'Pad',
    'Normalize', 'ToTensor', 'ImageToTensor', 'Transpose', 'PackInputs', 'PackDetInputs',
    'FilterAnnotations'
})
# Random transforms whose every draw is recorded in the sample's metainfo (and so in the key).
KEYED_RANDOM_TRANSFORMS = {
    'RandomFlip': ('flip', 'flip_direction'),
    'RandomResize': ('img_shape', ),
    'RandomChoiceResize': ('img_shape', ),
}


def _datasets_in(dataset) -> List[BaseDataset]:
    """The datasets inside dataset wrappers (Concat, Repeat, ClassBalanced, MultiImageMix)."""
    if hasattr(dataset, 'datasets'):
        return [inner for item in dataset.datasets for inner in _datasets_in(item)]
    if hasattr(dataset, 'dataset'):
        return _datasets_in(dataset.dataset)
    return [dataset]


def _pipelines_in(dataset) -> List[Tuple[str, list]]:
    """(where, transforms) of every pipeline the samples pass: each dataset's, and a wrapper's
    own (mmdet's ``MultiImageMixDataset`` runs Mosaic/MixUp over its dataset's samples)."""
    pipelines = []
    wrapper_pipeline = getattr(dataset, 'pipeline', None)
    if hasattr(dataset, 'datasets') or hasattr(dataset, 'dataset'):
        if wrapper_pipeline is not None:
            transforms = getattr(wrapper_pipeline, 'transforms', wrapper_pipeline)
            pipelines.append((f'{type(dataset).__name__}.pipeline', list(transforms)))
        inner = dataset.datasets if hasattr(dataset, 'datasets') else [dataset.dataset]
        for item in inner:
            pipelines.extend(_pipelines_in(item))
        return pipelines
    return [('pipeline', list(dataset.pipeline.transforms))]


def check_pipeline_is_keyable(dataset) -> None:
    """Raise a ``ValueError`` naming the first transform of the training pipelines whose
    random parameters the teacher cache cannot key, a missing metainfo key, or samples of
    concatenated datasets without an image path to tell them apart."""
    parts = _datasets_in(dataset)
    for where, transforms in _pipelines_in(dataset):
        packed = set()
        for transform in transforms:
            packed |= set(getattr(transform, 'meta_keys', ()))
        for transform in transforms:
            name = type(transform).__name__
            if name in DETERMINISTIC_TRANSFORMS:
                continue
            if name not in KEYED_RANDOM_TRANSFORMS:
                raise ValueError(
                    f'TeacherCacheHook: the training {where}\'s {name} draws random '
                    'parameters that are not recorded per sample, so cached teacher logits '
                    'would be those of another view. Deterministic transforms and '
                    f'{sorted(KEYED_RANDOM_TRANSFORMS)} can be cached; remove the hook or '
                    f'the transform')
            absent = set(KEYED_RANDOM_TRANSFORMS[name]) - packed
            if absent:
                raise ValueError(f'TeacherCacheHook: {name} is keyed by {sorted(absent)}, '
                                 'which the pipeline does not pack into meta_keys')
        if len(parts) > 1 and packed and 'img_path' not in packed:
            raise ValueError(
                'TeacherCacheHook: the training set concatenates several datasets, whose '
                'sample indices repeat, and its pipeline does not pack img_path into meta_keys: '
                'two images would share a cache entry. Pack img_path, or remove the hook')
    if len(parts) > 1 and not all(len(part) == 0 or 'img_path' in part.get_data_info(0)
                                  for part in parts):
        raise ValueError('TeacherCacheHook: the training set concatenates several datasets '
                         'whose samples have no img_path (images held in memory); their '
                         'sample indices repeat, so two images would share a cache entry')


@HOOKS.register_module()
class TeacherCacheHook(Hook):
    """Cache the teacher's logits per training sample: from the second time a sample is seen
    (the second epoch), its teacher forward is skipped.

    Checked before training starts, with a clear error otherwise: the training pipelines (those
    of dataset wrappers included) are deterministic or their random transforms are recorded in
    the samples' metainfo (RandomFlip, RandomResize), concatenated datasets pack ``img_path``
    (the cache key that tells their images apart), there are no batch augmentations (Mixup,
    CutMix), the losses compare logits,
    and the task's teacher logits are per sample (classifiers and dense detectors; not two-stage
    detectors). The cache lives in each process's memory (on the device of the logits) and is
    rebuilt after a resume. The share of samples served from it is logged as
    ``teacher_cache_hit_rate``.
    """

    priority = 'NORMAL'

    def before_train(self, runner: Runner) -> None:
        """Check the pipeline and switch the distiller's cache on."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'enable_teacher_cache'):
            raise TypeError(f'TeacherCacheHook: a {type(model).__name__} has no teacher cache '
                            '(Distiller and BlockwiseDistiller have one)')
        if getattr(model.data_preprocessor, 'batch_augments', None):
            raise ValueError('TeacherCacheHook: the data preprocessor\'s batch_augments mix '
                             'samples at random (Mixup/CutMix); their teacher logits cannot be '
                             'cached')
        check_pipeline_is_keyable(runner.train_dataloader.dataset)
        self.cache = model.enable_teacher_cache()

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        """Log the hit rate."""
        runner.message_hub.update_scalar('train/teacher_cache_hit_rate', self.cache.hit_rate)
