# DETR study teacher: DINO R18 (2 encoder and 3 decoder layers, 30 queries), on all 600 training
# images, with the base schedule (24 epochs of 75 iterations at batch 8, AdamW).
_base_ = './_base_/dino_r18_shapes.py'

train_dataloader = dict(dataset=dict(ann_file='annotations/train.json'))
