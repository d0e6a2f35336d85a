"""Compute the teacher's logits once per training sample and reuse them in later epochs."""

from typing import List, Optional, Tuple

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
    """(where, transforms) of every pipeline the samples pass: each dataset's, and a wrapper's own
    (mmdet's ``MultiImageMixDataset`` runs Mosaic/MixUp over its dataset's samples)."""
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
    """Raise a ``ValueError`` naming the first transform of the training pipelines whose random
    parameters the teacher cache cannot key, a missing metainfo key, or samples of concatenated
    datasets without an image path to tell them apart."""
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
    """Cache the teacher's logits per training sample: from the second time a sample is seen (the
    second epoch), its teacher forward is skipped.

    Checked before training starts, with a clear error otherwise: the training pipelines (those
    of dataset wrappers included) are deterministic or their random transforms are recorded in
    the samples' metainfo (RandomFlip, RandomResize), concatenated datasets pack ``img_path``
    (the cache key that tells their images apart), there are no batch augmentations (Mixup,
    CutMix), the losses compare logits,
    and the task's teacher logits are per sample (classifiers and dense detectors; not two-stage
    detectors). The cache lives in each process's CPU memory, at most ``max_gib``, and is rebuilt
    after a resume. Logged: ``teacher_cache_hit_rate`` (the share of samples served from it
    since training started) and ``teacher_cache_mib``; a warning says when it is full.

    Under DDP the sampler gives each rank another share of the samples every epoch, so a rank
    that cached only its own samples would find about 1/world_size of them in the next epoch.
    With ``share_across_ranks`` (the default) each rank also stores what the others computed
    (gathered every step, on the CPU): every rank then holds every sample's logits (memory
    × world size), and from the second epoch on the teacher does not run on any rank.

    Args:
        max_gib: The bound of each process's cache in GiB; samples beyond it are computed
            again each time they are seen. A dense detection head's logits take tens of MB per
            COCO image. Defaults to 4.0.
        share_across_ranks: Gather each step's new logits to every rank. Defaults to True.
    """

    priority = 'NORMAL'

    def __init__(self, max_gib: Optional[float] = 4.0, share_across_ranks: bool = True) -> None:
        if max_gib is not None and max_gib <= 0:
            raise ValueError(f'TeacherCacheHook.max_gib: must be > 0 or None, got {max_gib}')
        self.max_gib = max_gib
        self.share_across_ranks = share_across_ranks
        self.warned_full = False

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
        max_bytes = None if self.max_gib is None else int(self.max_gib * 2**30)
        self.cache = model.enable_teacher_cache(max_bytes, self.share_across_ranks)

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        """Log the hit rate and size; warn once when the cache is full."""
        runner.message_hub.update_scalar('train/teacher_cache_hit_rate', self.cache.hit_rate)
        runner.message_hub.update_scalar('train/teacher_cache_mib', self.cache.nbytes / 2**20)
        if self.cache.full and not self.warned_full:
            self.warned_full = True
            runner.logger.warning(
                f'TeacherCacheHook: the cache reached max_gib={self.max_gib} with '
                f'{len(self.cache)} samples; the others are computed by the teacher each time')
