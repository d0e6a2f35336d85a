"""Every checkpoint scheme mmengine registers loads weights-only with the exact allow-list, through
``load_checkpoint_weights_only`` and through mmengine's ``CheckpointLoader`` once the loaders are
registered (as the distillation runner does).

A pickle that would create a file is served through each scheme, from where that scheme reads (torch
hub's cache for the model-zoo schemes, mmengine's home for a local ``open-mmlab://`` entry, pavi's
model cloud and petrel's object store through stand-in clients of those services); it must be
refused with ``UnsafeCheckpointError`` without creating the file, while a real mmengine checkpoint
(with ``HistoryBuffer``) still loads.
"""

import json
import os
import os.path as osp
import shutil
import sys
from types import ModuleType, SimpleNamespace

import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from mmkd_plugins.checkpoint import (UnsafeCheckpointError, load_checkpoint_weights_only,
                                     register_weights_only_loaders)
from mmkd_plugins.checkpoint.model_zoo_download import cache_path_of
from ..support.checkpoints import RunsCodeWhenUnpickled


def mmengine_checkpoint_file(path) -> str:
    history = HistoryBuffer()
    history.update(1.5)
    torch.save({'state_dict': {'backbone.w': torch.ones(2)},
                'message_hub': {'log_scalars': {'train/loss': history}}}, str(path))
    return str(path)


def evil_checkpoint_file(path, marker) -> str:
    torch.save({'state_dict': {}, 'payload': RunsCodeWhenUnpickled(str(marker))}, str(path))
    return str(path)


@pytest.fixture(params=['load_checkpoint_weights_only', 'registered_in_mmengine'])
def load(request):
    """Load a checkpoint path on CPU by one of the two routes."""
    if request.param == 'registered_in_mmengine':
        register_weights_only_loaders()
        return lambda path: CheckpointLoader.load_checkpoint(path, map_location='cpu')
    return lambda path: load_checkpoint_weights_only(path, map_location='cpu')


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    return tmp_path / 'torch_home'


def zoo_url(scheme_path: str) -> str:
    """The URL that mmengine's tables give for a model-zoo scheme path."""
    scheme, name = scheme_path.split('://', 1)
    if scheme in ('torchvision', 'modelzoo'):
        return mmengine_checkpoint.get_torchvision_models()[name]
    if scheme in ('open-mmlab', 'openmmlab'):
        return mmengine_checkpoint.get_external_models()[name]
    return mmengine_checkpoint.get_mmcls_models()[name]


MODEL_ZOO_PATHS = ['torchvision://resnet50', 'modelzoo://resnet50',
                   'open-mmlab://detectron/resnet50_caffe', 'openmmlab://detectron/resnet50_caffe',
                   'mmcls://vgg11']


@pytest.mark.parametrize('scheme_path', MODEL_ZOO_PATHS)
def test_model_zoo_schemes_refuse_a_pickle_that_runs_code(scheme_path, load, torch_home,
                                                          tmp_path):
    marker = tmp_path / 'pwned'
    cached = cache_path_of(zoo_url(scheme_path))
    assert cached.startswith(str(torch_home))
    os.makedirs(osp.dirname(cached), exist_ok=True)
    evil_checkpoint_file(cached, marker)
    with pytest.raises(UnsafeCheckpointError, match='refused to load'):
        load(scheme_path)
    assert not marker.exists()


@pytest.mark.parametrize('scheme_path', MODEL_ZOO_PATHS)
def test_model_zoo_schemes_load_a_real_mmengine_checkpoint(scheme_path, load, torch_home):
    cached = cache_path_of(zoo_url(scheme_path))
    os.makedirs(osp.dirname(cached), exist_ok=True)
    mmengine_checkpoint_file(cached)
    loaded = load(scheme_path)
    if scheme_path.startswith('mmcls://'):  # mmengine's mmcls key conversion still applies
        assert torch.equal(loaded['state_dict']['w'], torch.ones(2))
    else:
        assert loaded['message_hub']['log_scalars']['train/loss'].current() == 1.5


def test_a_local_open_mmlab_entry_is_read_weights_only(load, tmp_path, monkeypatch):
    """``open-mmlab://`` names that mmengine's table maps to a file under its home folder."""
    home = tmp_path / 'mmengine_home'
    home.mkdir()
    monkeypatch.setenv('MMENGINE_HOME', str(home))
    (home / 'open_mmlab.json').write_text(json.dumps({'mine/good': 'good.pth',
                                                       'mine/evil': 'evil.pth'}))
    mmengine_checkpoint_file(home / 'good.pth')
    evil_checkpoint_file(home / 'evil.pth', tmp_path / 'pwned')
    loaded = load('open-mmlab://mine/good')
    assert torch.equal(loaded['state_dict']['backbone.w'], torch.ones(2))
    with pytest.raises(UnsafeCheckpointError):
        load('open-mmlab://mine/evil')
    assert not (tmp_path / 'pwned').exists()


def fake_pavi(monkeypatch, files: dict) -> None:
    """A stand-in for pavi's model-cloud client serving ``files`` (name -> local file)."""

    def get(path):
        return SimpleNamespace(name=osp.basename(path),
                               download=lambda target: shutil.copy(files[path], target))
    pavi = ModuleType('pavi')
    pavi.modelcloud = SimpleNamespace(get=get)
    monkeypatch.setitem(sys.modules, 'pavi', pavi)


def fake_petrel(monkeypatch, files: dict) -> None:
    """A stand-in for petrel's object-store client serving ``files`` (object name -> local file;
    mmengine's backend rewrites ``petrel://`` paths before asking the client)."""

    class Client:
        def __init__(self, conf_path=None, enable_mc=True):
            pass

        def Get(self, path):  # noqa: N802 (petrel's name)
            with open(files[osp.basename(path)], 'rb') as file:
                return file.read()

    petrel = ModuleType('petrel_client')
    petrel.client = SimpleNamespace(Client=Client)
    monkeypatch.setitem(sys.modules, 'petrel_client', petrel)


@pytest.mark.parametrize('scheme', ['pavi', 's3', 'petrel'])
def test_object_store_schemes_load_weights_only(scheme, load, tmp_path, monkeypatch):
    good = mmengine_checkpoint_file(tmp_path / 'good.pth')
    evil = evil_checkpoint_file(tmp_path / 'evil.pth', tmp_path / 'pwned')
    files = {f'{scheme}://bucket/good.pth': good, f'{scheme}://bucket/evil.pth': evil}
    if scheme == 'pavi':
        fake_pavi(monkeypatch, {path[len('pavi://'):]: local for path, local in files.items()})
    else:
        fake_petrel(monkeypatch, {osp.basename(path): local for path, local in files.items()})
    loaded = load(f'{scheme}://bucket/good.pth')
    assert loaded['message_hub']['log_scalars']['train/loss'].current() == 1.5  # HistoryBuffer
    with pytest.raises(UnsafeCheckpointError, match=f'{scheme}://bucket/evil.pth'):
        load(f'{scheme}://bucket/evil.pth')
    assert not (tmp_path / 'pwned').exists()


def test_a_stock_pretrained_init_cfg_loads_through_the_weights_only_loader(torch_home,
                                                                           tmp_path):
    """mmdet configs initialise backbones with ``init_cfg=dict(type='Pretrained',
    checkpoint='torchvision://resnet50')``: through ``init_weights()`` the file is read weights-
    only, and a pickle that would run code is refused."""
    import torchvision
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    register_weights_only_loaders()  # as the distillation runner does when it is built
    cached = cache_path_of(zoo_url('torchvision://resnet18'))
    os.makedirs(osp.dirname(cached), exist_ok=True)
    weights = torchvision.models.resnet18().state_dict()
    torch.save(weights, cached)
    backbone_cfg = dict(type='ResNet', depth=18,
                        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18'))
    backbone = MODELS.build(backbone_cfg)
    backbone.init_weights()
    assert torch.equal(backbone.conv1.weight, weights['conv1.weight'])
    assert torch.equal(backbone.layer4[1].bn2.running_var, weights['layer4.1.bn2.running_var'])
    evil_checkpoint_file(cached, tmp_path / 'pwned')
    with pytest.raises(UnsafeCheckpointError):
        MODELS.build(backbone_cfg).init_weights()
    assert not (tmp_path / 'pwned').exists()
