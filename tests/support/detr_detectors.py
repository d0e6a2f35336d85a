"""DETR-family test support: DINO and Deformable DETR small enough for the tests, as config files
that inherit mmdet's model-zoo configs."""

from pathlib import Path
from typing import Optional, Tuple

from mmengine.config import Config, ConfigDict
from mmengine.hub import get_config

from ..conftest import save_random_checkpoint

DINO = 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'
DEFORMABLE_TWO_STAGE = ('mmdet::deformable_detr/'
                        'deformable-detr-refine-twostage_r50_16xb2-50e_coco.py')
DEFORMABLE = 'mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py'
DETR = 'mmdet::detr/detr_r18_8xb2-500e_coco.py'
DDQ = 'mmdet::ddq/ddq-detr-4scale_r50_8xb2-12e_coco.py'
DAB_DETR = 'mmdet::dab_detr/dab-detr_r50_8xb2-50e_coco.py'

_NO_DROPOUT = dict(self_attn_cfg=dict(dropout=0.0), ffn_cfg=dict(feedforward_channels=128,
                                                                   ffn_drop=0.0))


def small_detr(num_queries: int = 12, decoder_layers: int = 2, num_classes: int = 3,
               base: str = DINO) -> dict:
    """Overrides of the DINO, Deformable DETR or DAB-DETR model config ``base``: ResNet-18 (three
    levels from stage 2 as the DINO and Deformable DETR zoo configs, the last stage for DAB-DETR),
    one encoder layer, ``decoder_layers`` decoder layers, 128-channel FFNs, no dropout,
    ``num_queries`` queries, the shapes' 3 classes."""
    if base == DAB_DETR:
        ffn = dict(feedforward_channels=128, ffn_drop=0.0)
        return dict(
            num_queries=num_queries,
            backbone=dict(depth=18, init_cfg=None),
            neck=dict(in_channels=[512]),
            encoder=dict(num_layers=1, layer_cfg=dict(ffn_cfg=ffn)),
            decoder=dict(num_layers=decoder_layers, layer_cfg=dict(ffn_cfg=ffn)),
            bbox_head=dict(num_classes=num_classes),
            test_cfg=dict(max_per_img=num_queries))
    return dict(
        num_queries=num_queries,
        backbone=dict(depth=18, init_cfg=None),
        neck=dict(in_channels=[128, 256, 512]),
        encoder=dict(num_layers=1, layer_cfg=_NO_DROPOUT),
        decoder=dict(num_layers=decoder_layers,
                     layer_cfg=dict(_NO_DROPOUT, cross_attn_cfg=dict(dropout=0.0))),
        bbox_head=dict(num_classes=num_classes),
        test_cfg=dict(max_per_img=num_queries))


def detr_config_file(base: str, path: str, **overrides) -> str:
    """``base``'s config with ``model`` overrides (e.g. :func:`small_detr`), written to ``path``."""
    cfg = get_config(base)
    cfg.merge_from_dict(dict(model=overrides))
    if cfg.model.get('dn_cfg') is not None:  # DINO: few denoising queries
        cfg.merge_from_dict(dict(model=dict(dn_cfg=dict(group_cfg=dict(num_dn_queries=6)))))
    Config(cfg.to_dict()).dump(path)
    return path


def small_detr_pair(directory: Path, student_base: str, teacher_base: str,
                    student_overrides: Optional[dict] = None,
                    teacher_overrides: Optional[dict] = None) -> Tuple[ConfigDict, dict]:
    """A small student and teacher of the DETR configs ``student_base`` and ``teacher_base`` (their
    :func:`small_detr` unless overridden), written to ``directory``, with the teacher's random
    weights (seed 1, initialized) saved there.

    Returns:
        The student's model config and a distiller's ``teacher`` entry.
    """
    teacher_config = detr_config_file(teacher_base, str(directory / 'teacher.py'),
                                      **(teacher_overrides or small_detr(base=teacher_base)))
    student_config = detr_config_file(student_base, str(directory / 'student.py'),
                                      **(student_overrides or small_detr(base=student_base)))
    checkpoint = save_random_checkpoint(teacher_config, str(directory / 'teacher.pth'), seed=1,
                                        initialized=True)
    return Config.fromfile(student_config).model, dict(config=teacher_config,
                                                       checkpoint=checkpoint)
