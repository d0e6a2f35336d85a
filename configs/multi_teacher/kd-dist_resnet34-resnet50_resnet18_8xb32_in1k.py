# Two teachers at once: ResNet-34 with KD and ResNet-50 with DIST (half weight), distilled into
# the stock ResNet-18 ImageNet recipe. Each teacher is loaded strictly and frozen like a single
# teacher; its losses are logged as distill.<teacher>.<loss>. Everything but the model is the
# stock mmpretrain config.
_base_ = ['mmpretrain::resnet/resnet18_8xb32_in1k.py', '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.Distiller',
    student={{_base_.model}},
    teachers=dict(
        resnet34=dict(
            config='mmpretrain::resnet/resnet34_8xb32_in1k.py',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/resnet/'
            'resnet34_8xb32_in1k_20210831-f257d4e6.pth',
            distill_losses=dict(loss_kd=dict(type='KDLoss', tau=1.0)),
            weight=1.0),
        resnet50=dict(
            config='mmpretrain::resnet/resnet50_8xb32_in1k.py',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/resnet/'
            'resnet50_8xb32_in1k_20210831-ea4938fc.pth',
            distill_losses=dict(loss_dist=dict(type='DISTLoss', tau=1.0, loss_weight=2.0)),
            weight=0.5)))

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
