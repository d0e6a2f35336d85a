"""Detection test support: the shapes demo's RetinaNet, small Faster and Cascade R-CNNs, their
configs, batches of generated shapes, and a distiller of two detector configs."""

from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.runner import Runner

from mmkd_plugins.models import Distiller
from ..conftest import DET_DEMO_CONFIGS, shapes_dataset

RETINANET = str(DET_DEMO_CONFIGS / '_base_' / 'retinanet_r18_shapes.py')


SMALL_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='PackDetInputs'),
]


# A Faster R-CNN small enough for the tests (ResNet-18, 64-channel FPN, 3 classes).
FASTER_RCNN_SMALL = dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(bbox_roi_extractor=dict(out_channels=64),
                  bbox_head=dict(in_channels=64, fc_out_channels=128, num_classes=3)))


def detector_cfg(config: str, **overrides) -> dict:
    cfg = get_config(config) if '::' in config else Config.fromfile(config)
    cfg.merge_from_dict(dict(model=overrides))
    return cfg.model


def batch_of(shapes_root: str, size: int = 4, scale: int = 64, with_mask: bool = False) -> dict:
    """The first ``size`` generated training images, resized to ``scale`` pixels a side (with their
    instance masks when ``with_mask``)."""
    resized = {'Resize': dict(scale=(scale, scale)), 'LoadAnnotations': dict(with_mask=with_mask)}
    pipeline = [dict(step, **resized.get(step['type'], {})) for step in SMALL_PIPELINE]
    loader = Runner.build_dataloader(dict(
        batch_size=size, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='pseudo_collate'),
        dataset=shapes_dataset(shapes_root, 'train', pipeline)))
    return next(iter(loader))


def distiller_for(student_cfg: dict, teacher_config: str, checkpoint: str, losses: dict,
                  **teacher_options) -> Distiller:
    return Distiller(student=student_cfg,
                     teacher=dict(config=teacher_config, checkpoint=checkpoint,
                                  **teacher_options),
                     distill_losses=losses)


CASCADE = 'mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py'


CASCADE_SMALL = dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(bbox_roi_extractor=dict(out_channels=64),
                  bbox_head=[dict(type='Shared2FCBBoxHead', in_channels=64, fc_out_channels=128,
                                  num_classes=3, bbox_coder=dict(
                                      type='DeltaXYWHBBoxCoder', target_means=[0.] * 4,
                                      target_stds=stds), reg_class_agnostic=True,
                                  loss_cls=dict(type='CrossEntropyLoss', loss_weight=1.0),
                                  loss_bbox=dict(type='SmoothL1Loss', beta=1.0,
                                                 loss_weight=1.0))
                             for stds in ([.1, .1, .2, .2], [.05, .05, .1, .1],
                                          [.033, .033, .067, .067])]))


FASTER = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
