# KD from a soft-label store (FKD): the ResNet-34 -> ResNet-18 KD config of configs/kd (the
# stock mmpretrain ImageNet-1k recipe), with the teacher's outputs read from a store made once
# instead of computed in every step. Make the store, then train from it:
#     python tools/make_soft_labels.py configs/soft_labels/kd_resnet34_resnet18_stored_in1k.py \
#         --views 100 --top-k 10
#     bash tools/dist_train.sh configs/soft_labels/kd_resnet34_resnet18_stored_in1k.py 8
# The store replays the stock pipeline's random part (RandomResizedCrop, RandomFlip), seeded
# per (image, view); the config's DistillationRunner makes the pipeline replay it, whichever
# train script runs it. See docs/user_guides/teacher_cache_and_soft_label_store.md for choosing
# the views and the top-k.
_base_ = ['../kd/kd_resnet34_resnet18_8xb32_in1k.py']

model = dict(soft_labels=dict(store='data/soft_labels/resnet34_in1k'))
