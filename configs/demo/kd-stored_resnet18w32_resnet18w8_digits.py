# Demo KD from a soft-label store: the demo KD config, with the teacher's outputs read from a
# store instead of computed in each step. Make the store once, then train:
#     python tools/make_soft_labels.py configs/demo/kd-stored_resnet18w32_resnet18w8_digits.py \
#         --views 100 --top-k 10
#     python tools/train.py configs/demo/kd-stored_resnet18w32_resnet18w8_digits.py
# The store replays the whole random part of the training pipeline (RandomResizedCrop and
# Rotate), seeded per (image, view); the config's DistillationRunner makes the pipeline
# replay it, whichever train script runs it.
_base_ = ['./kd_resnet18w32_resnet18w8_digits.py']

model = dict(soft_labels=dict(store='work_dirs/digits_demo/soft_labels'))
