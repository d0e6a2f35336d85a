# Block-wise logit distillation across architectures on detection: Mask R-CNN with a Swin-T
# backbone (a transformer; its box branch teaches) -> Faster R-CNN R50 (a CNN). Both backbones
# have four stages at strides 4, 8, 16, 32, paired stage by stage, and both FPNs read all four.
# Each student stage's map goes through a 1x1 conv + BN connector to the Swin stage's channels
# (256/512/1024/2048 -> 96/192/384/768) and is laid out as that stage's tokens on its grid for
# the batch's padded input size. Hybrid N_i then runs the teacher's later Swin stages and FPN and
# its RoI extractor and box head on the student's sampled RoIs of the step (no second RPN, no
# mask head), trained by the teacher box head's loss, its RoI class logits distilled with softmax
# DIST as in the R101 -> R50 config. Everything but the model is the stock config.
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.BlockwiseDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/swin/'
        'mask_rcnn_swin-t-p4-w7_fpn_1x_coco/'
        'mask_rcnn_swin-t-p4-w7_fpn_1x_coco_20210902_120937-9d6b7cfa.pth'),
    distill_losses=dict(
        loss_dist=dict(type='DISTLoss', beta=1.0, gamma=1.0, tau=1.0, loss_weight=1.0)),
    hybrids=dict(stages=[1, 2, 3, 4], connector=dict(type='mmkd_plugins.ConvBNConnector'),
                 weights='halving'),
    alpha=1.0, beta=1.0, gamma=1.0)

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
