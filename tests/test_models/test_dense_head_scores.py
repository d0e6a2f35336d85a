"""Every dense head of the model-zoo sweep's one-stage families (and CenterNet's) is known as
returning class logits or probabilities, and what its forward returns agrees; heads whose first
output is no per-class sigmoid map, and unknown heads, are refused with the reason."""

from typing import Tuple

import pytest
import torch
from mmdet.models.dense_heads import RetinaHead
from mmdet.registry import MODELS
from mmengine.hub import get_config
from mmengine.registry import init_default_scope
from torch import nn

from mmkd_plugins.models.task_adapters.dense_head_scores import PROBABILITIES, dense_head_scores

# head class -> a stock config with that head (the sweep's student of its family, or teacher)
ZOO_HEADS = {
    'ATSSHead': 'atss/atss_r50_fpn_1x_coco.py',
    'AutoAssignHead': 'autoassign/autoassign_r50-caffe_fpn_1x_coco.py',
    'CenterNetHead': 'centernet/centernet_r18_8xb16-crop512-140e_coco.py',
    'CenterNetUpdateHead': 'centernet/centernet-update_r18_fpn_8xb8-amp-lsj-200e_coco.py',
    'CentripetalHead':
        'centripetalnet/centripetalnet_hourglass104_16xb6-crop511-210e-mstest_coco.py',
    'CornerHead': 'cornernet/cornernet_hourglass104_8xb6-210e-mstest_coco.py',
    'DDODHead': 'ddod/ddod_r50_fpn_1x_coco.py',
    'FCOSHead': 'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    'FSAFHead': 'fsaf/fsaf_r50_fpn_1x_coco.py',
    'FoveaHead': 'foveabox/fovea_r50_fpn_4xb4-1x_coco.py',
    'FreeAnchorRetinaHead': 'free_anchor/freeanchor_r50_fpn_1x_coco.py',
    'GFLHead': 'gfl/gfl_r50_fpn_1x_coco.py',
    'NASFCOSHead': 'nas_fcos/nas-fcos_r50-caffe_fpn_nashead-gn-head_4xb4-1x_coco.py',
    'PAAHead': 'paa/paa_r50_fpn_1x_coco.py',
    'PISARetinaHead': 'pisa/retinanet-r50_fpn_pisa_1x_coco.py',
    'RTMDetSepBNHead': 'rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
    'RTMDetInsSepBNHead': 'rtmdet/rtmdet-ins_tiny_8xb32-300e_coco.py',
    'RepPointsHead': 'reppoints/reppoints-bbox_r50_fpn-gn_head-gn-grid_1x_coco.py',
    'RetinaHead': 'retinanet/retinanet_r18_fpn_1x_coco.py',
    'RetinaSepBNHead': 'efficientnet/retinanet_effb3_fpn_8xb4-crop896-1x_coco.py',
    'TOODHead': 'tood/tood_r50_fpn_1x_coco.py',
    'VFNetHead': 'vfnet/vfnet_r50_fpn_1x_coco.py',
    'YOLOFHead': 'yolof/yolof_r50-c5_8xb8-1x_coco.py',
    'YOLOXHead': 'yolox/yolox_nano_8xb8-300e_coco.py',
}
REFUSED_HEADS = {
    'YOLOV3Head': ('yolo/yolov3_mobilenetv2_8xb24-320-300e_coco.py',
                   "box offsets, objectness and class scores together"),
    'SSDHead': ('ssd/ssd300_coco.py', 'a softmax over the classes and the background'),
}


def stock_head(config: str) -> Tuple[nn.Module, int]:
    """The ``bbox_head`` of an mmdet config, built as its detector builds it (random weights), and
    its input channels."""
    init_default_scope('mmdet')
    model = get_config(f'mmdet::{config}').model
    head = MODELS.build(dict(model.bbox_head, train_cfg=model.get('train_cfg'),
                             test_cfg=model.get('test_cfg')))
    return head, model.bbox_head.in_channels


def random_features(head: nn.Module, channels: int) -> list:
    """Large random features for each level the head reads: (1, C, 8, 8) per level."""
    generator = getattr(head, 'prior_generator', None)
    levels = len(generator.strides) if generator is not None else getattr(
        head, 'num_feat_levels', 1)
    torch.manual_seed(0)
    return [torch.randn(1, channels, 8, 8) * 10 for _ in range(levels)]


@pytest.mark.parametrize('head_type', sorted(ZOO_HEADS))
def test_a_zoo_heads_first_output_is_what_its_kind_says(head_type):
    """Probabilities lie in [0, 1] whatever the features; logits of large random features do not
    (every head's class bias is negative or its weights random), so a head listed with the wrong
    kind fails here."""
    head, channels = stock_head(ZOO_HEADS[head_type])
    assert type(head).__name__ == head_type
    with torch.no_grad():
        maps = head.eval()(random_features(head, channels))[0]
    values = torch.cat([level.flatten() for level in maps])
    within_0_1 = bool(values.min() >= 0 and values.max() <= 1)
    assert within_0_1 == (dense_head_scores(head, 'model.bbox_head') == PROBABILITIES)


@pytest.mark.parametrize('head_type', sorted(REFUSED_HEADS))
def test_a_head_without_per_class_sigmoid_maps_is_refused_with_the_reason(head_type):
    config, reason = REFUSED_HEADS[head_type]
    head, _ = stock_head(config)
    with pytest.raises(ValueError, match=rf'model\.student\.bbox_head: the {head_type} cannot '
                       rf'be distilled by its class scores: .*{reason}'):
        dense_head_scores(head, 'model.student.bbox_head')


def test_a_subclass_that_overrides_the_forward_of_a_known_head_is_refused():
    class SharpenedRetinaHead(RetinaHead):
        def forward_single(self, x):
            cls_score, bbox_pred = super().forward_single(x)
            return cls_score.sigmoid(), bbox_pred

    class ReweightedRetinaHead(RetinaHead):  # keeps the forward: known through RetinaHead
        pass

    with pytest.raises(ValueError, match=r'model\.student\.bbox_head: the SharpenedRetinaHead '
                       r'overrides forward_single of RetinaHead, so whether its class maps are '
                       r'logits or probabilities is not known'):
        dense_head_scores(SharpenedRetinaHead.__new__(SharpenedRetinaHead),
                          'model.student.bbox_head')
    assert dense_head_scores(ReweightedRetinaHead.__new__(ReweightedRetinaHead), 'f') == 'logits'
