"""Every shipped distillation config builds and trains one step, with its dataset swapped for
generated data and its model-zoo teacher read from torch hub's cache (random weights of the right
architecture)."""

import os.path as osp
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmkd_plugins.models import BlockwiseDistiller, Distiller
from mmkd_plugins.models.teachers import build_model_from_config, load_model_config
from mmkd_plugins.soft_labels import use_soft_label_store
from ..conftest import REPO_ROOT, run_tool, save_random_checkpoint, shapes_dataset

# (configs/soft_labels read a store: test_the_shipped_store_config_makes_its_store_and_trains)
CLASSIFICATION_CONFIGS = sorted(str(p) for p in (REPO_ROOT / 'configs').glob('*/*_in1k.py')
                                if p.parent.name != 'soft_labels')
STORE_CONFIG = str(REPO_ROOT / 'configs' / 'soft_labels' / 'kd_resnet34_resnet18_stored_in1k.py')
DETECTION_CONFIGS = sorted(str(p) for p in (REPO_ROOT / 'configs').glob('*/*_coco.py'))
SMALL_DETECTION_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(96, 96), keep_ratio=True),
    dict(type='PackDetInputs'),
]


def cache_model_zoo_teacher(cfg: Config, torch_home: Path, initialized: bool = False) -> None:
    """Place a checkpoint of each teacher's architecture where its URL would be downloaded to; a
    teacher read from a local file (a timm teacher's file from the HuggingFace hub) gets random
    weights of its architecture in a file of the test's, in the same format; ``initialized``: see
    :func:`~tests.conftest.save_random_checkpoint`."""
    teachers = cfg.model.teachers.values() if 'teachers' in cfg.model else [cfg.model.teacher]
    for teacher in teachers:
        if '://' not in teacher.checkpoint:  # a local file the user fetches
            path = torch_home / 'local_teachers' / osp.basename(teacher.checkpoint)
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix == '.safetensors':
                from safetensors.torch import save_file
                torch.manual_seed(0)
                model = build_model_from_config(load_model_config(teacher.config, 'test'))
                save_file({key: value.contiguous() for key, value in model.state_dict().items()},
                          str(path))
            else:
                save_random_checkpoint(teacher.config, str(path))
            teacher.checkpoint = str(path)
            continue
        assert teacher.checkpoint.startswith('https://download.openmmlab.com/')
        path = torch_home / 'hub' / 'checkpoints' / osp.basename(teacher.checkpoint)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            save_random_checkpoint(teacher.config, str(path), initialized=initialized)


def train_one_step(cfg: Config, work_dir: str, initialize: bool = False) -> dict:
    """One training step of ``cfg``'s distiller; with ``initialize``, after the model's
    ``init_weights()`` (as ``runner.train()`` runs it: DETR-family students create their level
    embeddings without values and fill them there)."""
    cfg.work_dir = work_dir
    cfg.train_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
    runner = Runner.from_cfg(cfg)
    assert isinstance(runner.model, Distiller)
    if initialize:
        runner.model.init_weights()
    optim_wrapper = runner.build_optim_wrapper(cfg.optim_wrapper)
    batch = next(iter(runner.build_dataloader(cfg.train_dataloader)))
    log_vars = runner.model.train_step(batch, optim_wrapper)
    distill_keys = [key for key in log_vars if key.startswith(('distill.', 'hybrid', 'cross.'))]
    assert distill_keys and all(torch.isfinite(torch.as_tensor(log_vars[k])) for k in distill_keys)
    if isinstance(runner.model, BlockwiseDistiller):  # every hybrid is distilled
        for stage in runner.model.hybrids.stages:
            assert any(key.startswith(f'hybrid{stage}.distill.') for key in distill_keys)
    return log_vars


@pytest.fixture
def torch_home(tmp_path_factory, monkeypatch) -> Path:
    home = tmp_path_factory.getbasetemp() / 'torch_home'
    monkeypatch.setenv('TORCH_HOME', str(home))
    return home


@pytest.mark.parametrize('config', CLASSIFICATION_CONFIGS,
                         ids=[osp.basename(c) for c in CLASSIFICATION_CONFIGS])
def test_classification_config_trains_one_step(config, digits_root, torch_home, tmp_path):
    cfg = Config.fromfile(config)
    cache_model_zoo_teacher(cfg, torch_home)
    cfg.train_dataloader.dataset = dict(type='CustomDataset', data_root=digits_root,
                                        ann_file='student_train.txt',
                                        pipeline=cfg.train_dataloader.dataset.pipeline)
    # RandomResizedCrop: small for CPU, but at the 224 px a Swin teacher's 7 × 7 windows need
    swin_teacher = 'swin' in cfg.model.get('teacher', {}).get('config', '')
    cfg.train_dataloader.dataset.pipeline[1].scale = 224 if swin_teacher else 64
    train_one_step(cfg, str(tmp_path))


def test_the_shipped_store_config_makes_its_store_and_trains_a_step(digits_root, torch_home,
                                                                   tmp_path):
    """The ImageNet recipe from a soft-label store, on the digits at 64 px: the stock pipeline's
    RandomResizedCrop and RandomFlip are replayable, tools/make_soft_labels.py makes the store of
    its model-zoo teacher (from torch hub's cache), and the distiller trains from it."""
    cfg = Config.fromfile(STORE_CONFIG)
    cache_model_zoo_teacher(cfg, torch_home)
    store = str(tmp_path / 'store')
    config = tmp_path / 'stored_on_digits.py'
    config.write_text(
        f'_base_ = {STORE_CONFIG!r}\n'
        f'model = dict(soft_labels=dict(store={store!r}))\n'
        'train_dataloader = dict(dataset=dict(_delete_=True, type="CustomDataset", '
        f'data_root={digits_root!r}, ann_file="student_train.txt", pipeline=[\n'
        '    dict(type="LoadImageFromFile"), dict(type="RandomResizedCrop", scale=64),\n'
        '    dict(type="RandomFlip", prob=0.5, direction="horizontal"),\n'
        '    dict(type="PackInputs")]))\n')
    run_tool('make_soft_labels.py', str(config), '--views', '2', '--top-k', '10')
    cfg = Config.fromfile(str(config))
    assert [transform.type for transform in cfg.train_dataloader.dataset.pipeline] == [
        transform.type for transform in Config.fromfile(STORE_CONFIG).train_pipeline]
    use_soft_label_store(cfg)
    log_vars = train_one_step(cfg, str(tmp_path / 'work_dir'))
    assert log_vars['distill.loss_kd'] > 0


@pytest.mark.parametrize('config', DETECTION_CONFIGS,
                         ids=[osp.basename(c) for c in DETECTION_CONFIGS])
def test_detection_config_trains_one_step(config, shapes_root, torch_home, tmp_path):
    cfg = Config.fromfile(config)
    cache_model_zoo_teacher(cfg, torch_home, initialized=True)
    cfg.model.student.backbone.init_cfg = None  # no ImageNet download in the test
    pipeline = SMALL_DETECTION_PIPELINE
    if 'num_queries' in cfg.model.student:  # a DETR picks 300-900 of its encoder's positions:
        pipeline = [dict(step, scale=(256, 256)) if step['type'] == 'Resize' else step
                    for step in pipeline]  # 1,360 on four levels at 256 px
    cfg.train_dataloader.dataset = shapes_dataset(shapes_root, 'train', pipeline)
    cfg.train_dataloader.sampler = dict(type='DefaultSampler', shuffle=True)
    cfg.train_dataloader.pop('batch_sampler', None)
    log_vars = train_one_step(cfg, str(tmp_path), initialize=True)
    assert any(key.startswith('student.loss') for key in log_vars)


# (kd-stored_* reads a soft-label store: tests/test_soft_labels makes one and trains with it)
DIGITS_DEMO_CONFIGS = sorted(str(p) for p in (REPO_ROOT / 'configs' / 'demo').glob('*_digits.py')
                             if not p.name.startswith(('teacher_', 'student_', 'kd-stored_')))


@pytest.mark.parametrize('config', DIGITS_DEMO_CONFIGS,
                         ids=[osp.basename(c) for c in DIGITS_DEMO_CONFIGS])
def test_digits_demo_config_trains_one_step(config, digits_root, teacher_checkpoint, tmp_path):
    cfg = Config.fromfile(config)
    cfg.model.teacher.checkpoint = teacher_checkpoint
    cfg.train_dataloader.dataset.data_root = digits_root
    train_one_step(cfg, str(tmp_path))


SHAPES_DEMO_CONFIGS = sorted(str(p) for p in (REPO_ROOT / 'configs' / 'demo' / 'det').glob('*.py')
                             if not p.name.startswith(('teacher_', 'student_')))


@pytest.mark.parametrize('config', SHAPES_DEMO_CONFIGS,
                         ids=[osp.basename(c) for c in SHAPES_DEMO_CONFIGS])
def test_shapes_demo_config_trains_one_step(config, shapes_root, tmp_path):
    """The detection demo's distillation configs (their data, 64-px pipeline and hybrids) train a
    step with a random-weight teacher of the demo's teacher config (RetinaNet and DINO)."""
    cfg = Config.fromfile(config)
    cfg.model.teacher.checkpoint = save_random_checkpoint(
        str(REPO_ROOT / cfg.model.teacher.config), str(tmp_path / 'teacher.pth'),
        initialized=True)
    cfg.train_dataloader.dataset.data_root = shapes_root
    log_vars = train_one_step(cfg, str(tmp_path), initialize=True)
    assert any(key.startswith('student.loss') for key in log_vars)
