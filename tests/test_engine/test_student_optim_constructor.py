"""A stock config's optimizer constructor applies to the student inside a distiller, as it does in
the stock training; the distiller's own parameters are trained too."""

import pytest
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope

from mmkd_plugins.engine import run_optim_constructor_on_student
from mmkd_plugins.models import Distiller
from ..conftest import save_random_checkpoint

# mmdet's ConvNeXt configs: LearningRateDecayOptimizerConstructor reads model.backbone and
# names parameters 'backbone.stages.<stage>.<block>...' (mmdet's own layer decay).
CONVNEXT = 'mmdet::convnext/mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py'
def convnext_small() -> dict:
    """A fresh dict each time: merging a config pops its ``_delete_``."""
    return dict(
        backbone=dict(arch=dict(_delete_=True, depths=[1, 1, 3, 1], channels=[8, 16, 32, 64]),
                      drop_path_rate=0.0, init_cfg=None),
        neck=dict(in_channels=[8, 16, 32, 64], out_channels=16),
        rpn_head=dict(in_channels=16, feat_channels=16),
        roi_head=dict(bbox_roi_extractor=dict(out_channels=16),
                      bbox_head=dict(in_channels=16, fc_out_channels=32, num_classes=3),
                      mask_roi_extractor=dict(out_channels=16),
                      mask_head=dict(in_channels=16, conv_out_channels=16, num_classes=3)))
LEARNED_TAU_KD = dict(loss_kd=dict(
    type='KDLoss', activation='softmax',
    tau=dict(type='CurriculumTemperature', mode='global', init_tau=4.0, warmup_epochs=1)))


@pytest.fixture
def convnext_config() -> Config:
    init_default_scope('mmdet')
    cfg = get_config(CONVNEXT)
    cfg.merge_from_dict(dict(model=convnext_small()))
    cfg.optim_wrapper.type = 'OptimWrapper'  # AmpOptimWrapper needs a GPU
    return cfg


def convnext_distiller(convnext_config: Config, tmp_path) -> Distiller:
    """The small ConvNeXt student with a learned-temperature KD from a random teacher."""
    checkpoint = save_random_checkpoint(CONVNEXT, str(tmp_path / 'teacher.pth'),
                                        dict(model=convnext_small()))
    return Distiller(student=convnext_config.model,
                     teacher=dict(config=CONVNEXT, checkpoint=checkpoint,
                                  cfg_options=dict(model=convnext_small())),
                     distill_losses=LEARNED_TAU_KD)


def settings_by_parameter(optim_wrapper) -> dict:
    """{parameter id: (lr, weight_decay)} over the optimizer's groups."""
    return {id(param): (group['lr'], group['weight_decay'])
            for group in optim_wrapper.optimizer.param_groups for param in group['params']}


def test_the_stock_constructor_gives_the_students_parameters_their_stock_settings(
        tmp_path, convnext_config):
    stock_student = MODELS.build(convnext_config.model)
    stock = settings_by_parameter(build_optim_wrapper(stock_student,
                                                      convnext_config.optim_wrapper.copy()))
    distiller = convnext_distiller(convnext_config, tmp_path)
    distiller.student.load_state_dict(stock_student.state_dict())
    cfg = Config(dict(model=dict(type='mmkd_plugins.Distiller'),
                      optim_wrapper=convnext_config.optim_wrapper))
    run_optim_constructor_on_student(cfg)
    assert cfg.optim_wrapper.constructor == 'mmkd_plugins.StudentOptimWrapperConstructor'
    assert cfg.optim_wrapper.student_constructor == 'LearningRateDecayOptimizerConstructor'
    ours = settings_by_parameter(build_optim_wrapper(distiller, cfg.optim_wrapper.copy()))

    stock_by_name = {name: stock[id(param)] for name, param in stock_student.named_parameters()}
    for name, param in distiller.student.named_parameters():
        assert ours[id(param)] == stock_by_name[name], name
    # the config's layer decay took effect (decay_rate 0.95, num_layers 6, lr 1e-4): the stem
    # is layer 0 of 6 + 2, scaled 0.95 ** (8 - 0 - 1); the neck is past the backbone, scale 1
    assert stock_by_name['backbone.downsample_layers.0.0.weight'] == (
        pytest.approx(1e-4 * 0.95 ** 7), 0.05)
    assert stock_by_name['neck.fpn_convs.0.conv.weight'] == (pytest.approx(1e-4), 0.05)
    own = [param for name, param in distiller.named_parameters()
           if not name.startswith('student.')]
    assert own, 'the learned temperature is a parameter of the distiller'
    assert all(ours[id(param)] == (1e-4, 0.05) for param in own)  # the optimizer's settings
    assert len(ours) == len(list(distiller.parameters()))


def test_the_stock_constructor_on_the_distiller_says_what_to_set(tmp_path, convnext_config):
    distiller = convnext_distiller(convnext_config, tmp_path)
    with pytest.raises(AttributeError, match=r"model\.backbone: a Distiller holds the "
                       r"student's at model\.student\.backbone; .*optim_wrapper\.constructor="
                       r"'mmkd_plugins\.StudentOptimWrapperConstructor'"):
        build_optim_wrapper(distiller, convnext_config.optim_wrapper.copy())


@pytest.mark.parametrize('optim_wrapper,expected', [
    (dict(optimizer=dict(type='SGD', lr=0.1)), None),  # mmengine's default: unchanged
    (dict(constructor='DefaultOptimWrapperConstructor', optimizer=dict(type='SGD', lr=0.1)),
     None),
    (dict(constructor='LearningRateDecayOptimWrapperConstructor',
          optimizer=dict(type='AdamW', lr=0.1)), 'LearningRateDecayOptimWrapperConstructor'),
])
def test_only_configs_with_their_own_constructor_are_rewritten(optim_wrapper, expected):
    cfg = Config(dict(model=dict(type='mmkd_plugins.BlockwiseDistiller'),
                      optim_wrapper=optim_wrapper))
    before = cfg.optim_wrapper.to_dict()
    run_optim_constructor_on_student(cfg)
    if expected is None:
        assert cfg.optim_wrapper.to_dict() == before
    else:
        assert cfg.optim_wrapper.student_constructor == expected


def test_a_stock_model_config_is_not_rewritten():
    cfg = Config(dict(model=dict(type='ImageClassifier'), optim_wrapper=dict(
        constructor='LearningRateDecayOptimWrapperConstructor', optimizer=dict(type='SGD'))))
    init_default_scope('mmpretrain')
    run_optim_constructor_on_student(cfg)
    assert cfg.optim_wrapper.constructor == 'LearningRateDecayOptimWrapperConstructor'
