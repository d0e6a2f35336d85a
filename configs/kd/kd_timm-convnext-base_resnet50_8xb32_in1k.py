# KD from a timm teacher: timm's ImageNet-1k ConvNeXt-B (convnext_base.fb_in1k, through
# mmpretrain's TimmClassifier) -> the stock mmpretrain ResNet-50 recipe, with the KD setting of
# kd_resnet34_resnet18_8xb32_in1k.py (T 1, CE and KD weights 0.5 each). The teacher's weights
# are timm's own file from the HuggingFace hub (fetch it once, e.g.
#   huggingface-cli download timm/convnext_base.fb_in1k model.safetensors \
#       --local-dir checkpoints/convnext_base.fb_in1k
# ); its preprocessing (RGB, timm's mean and std) is read from timm's pretrained_cfg, and
# the student's batch is re-normalized for it. Everything but the model is the stock config.
_base_ = ['mmpretrain::resnet/resnet50_8xb32_in1k.py', '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.Distiller',
    student={{_base_.model}},
    teacher=dict(
        config=dict(model=dict(type='mmpretrain.TimmClassifier',
                               model_name='convnext_base.fb_in1k', pretrained=False)),
        checkpoint='checkpoints/convnext_base.fb_in1k/model.safetensors'),
    distill_losses=dict(loss_kd=dict(type='KDLoss', tau=1.0, loss_weight=0.5)),
    student_loss_weight=0.5)

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
