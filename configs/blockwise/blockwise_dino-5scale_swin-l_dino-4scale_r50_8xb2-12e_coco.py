# Block-wise logit distillation on DINO: DINO Swin-L (5 scales) teacher -> DINO R50 (4 scales)
# student. Hybrid N_i runs the student's backbone stages 1..i, connectors into the teacher's
# feature space for every stage its neck reads, the teacher's later Swin stages, neck and encoder,
# then the teacher's decoder and class branches on the teacher's distillation boxes of the step
# (its top-900 encoder proposals, which the student decodes too, as in the KD config). Hybrids
# N_3 and N_4 only (weighted 1/2^(n-i) as in the paper): the cheaper form the demos recommend
# (measured on classifiers and RetinaNet, not on DETRs). A DETR's head losses match its own
# queries to the objects, and the shared boxes have none, so the hybrids learn from their
# distillation and cross terms alone (task_losses=False). Binary KL on each sigmoid class score
# of every query and decoder layer (tau 1). Everything but the model is the stock mmdet config.
_base_ = ['mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py', '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.BlockwiseDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::dino/dino-5scale_swin-l_8xb2-12e_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v3.0/dino/'
        'dino-5scale_swin-l_8xb2-12e_coco/dino-5scale_swin-l_8xb2-12e_coco_20230228_072924-a654145f.pth'),
    distill_losses=dict(loss_kd=dict(
        type='KDLoss', tau=1.0, loss_weight=1.0, activation='sigmoid')),
    hybrids=dict(stages=[3, 4], connector=dict(type='mmkd_plugins.ConvBNConnector'),
                 weights='halving', task_losses=False),
    alpha=1.0, beta=1.0, gamma=1.0)

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
