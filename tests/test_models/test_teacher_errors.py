"""Bad teacher input fails at build time with a message naming the config field."""
import shutil

import pytest
import torch

from mmkd_plugins.models import Distiller
from ..conftest import STUDENT_CONFIG, TEACHER_CONFIG, save_random_checkpoint
from .test_distiller import build_distiller, student_model_cfg


def test_missing_checkpoint_file_names_the_field():
    with pytest.raises(FileNotFoundError, match=r'model\.teacher\.checkpoint.*no_such\.pth'):
        build_distiller('/nonexistent/no_such.pth')


def test_missing_teacher_config_names_the_field(teacher_checkpoint):
    with pytest.raises(FileNotFoundError, match=r'model\.teacher\.config.*configs/none\.py'):
        Distiller(student=student_model_cfg(),
                  teacher=dict(config='configs/none.py', checkpoint=teacher_checkpoint),
                  distill_losses=dict(loss_kd=dict(type='KDLoss')))


def test_checkpoint_of_another_architecture_lists_the_keys(tmp_path):
    wrong = save_random_checkpoint(STUDENT_CONFIG, str(tmp_path / 'student.pth'))
    with pytest.raises(ValueError) as error:
        build_distiller(wrong)
    message = str(error.value)
    assert 'model.teacher.checkpoint' in message and 'does not match' in message
    assert 'with another shape' in message and 'backbone.conv1.weight' in message


def test_checkpoint_with_missing_keys_is_refused(tmp_path, teacher_checkpoint):
    state = torch.load(teacher_checkpoint)['state_dict']
    del state['head.fc.weight']
    path = str(tmp_path / 'partial.pth')
    torch.save({'state_dict': state}, path)
    with pytest.raises(ValueError, match=r'1 keys missing in the checkpoint: head\.fc\.weight'):
        build_distiller(path)


def test_class_count_mismatch_is_refused(tmp_path):
    options = dict(model=dict(head=dict(num_classes=7)))
    checkpoint = save_random_checkpoint(TEACHER_CONFIG, str(tmp_path / 't7.pth'), options)
    with pytest.raises(ValueError, match=r'teacher predicts 7 classes and the student 10'):
        build_distiller(checkpoint, cfg_options=options)


def test_unknown_loss_type_and_badly_named_loss_are_refused(teacher_checkpoint):
    with pytest.raises(KeyError, match=r'model\.distill_losses\.loss_x.*NoSuchLoss'):
        build_distiller(teacher_checkpoint, losses=dict(loss_x=dict(type='NoSuchLoss')))
    with pytest.raises(ValueError, match=r"'kd' must contain 'loss'"):
        build_distiller(teacher_checkpoint, losses=dict(kd=dict(type='KDLoss')))


def test_url_teacher_is_read_from_torch_hub_cache_offline(tmp_path, monkeypatch,
                                                          teacher_checkpoint):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    cache = tmp_path / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    shutil.copy(teacher_checkpoint, cache / 'teacher_digits-0123abcd.pth')
    model = build_distiller('http://127.0.0.1:9/models/teacher_digits-0123abcd.pth')
    loaded = torch.load(teacher_checkpoint)['state_dict']
    assert torch.equal(model.teacher.state_dict()['head.fc.weight'], loaded['head.fc.weight'])


def test_unreachable_url_teacher_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    expected = r"model\.teacher\.checkpoint.*hub/checkpoints/absent\.pth"
    with pytest.raises(FileNotFoundError, match=expected):
        build_distiller('http://127.0.0.1:9/models/absent.pth')


def test_teacher_of_another_task_is_refused_before_loading_weights(teacher_checkpoint):
    detector = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'
    with pytest.raises(TypeError, match=r'model\.teacher\.config: the student is a classifier '
                       r'but the teacher is a RetinaNet'):
        Distiller(student=student_model_cfg(),
                  teacher=dict(config=detector, checkpoint=teacher_checkpoint),
                  distill_losses=dict(loss_kd=dict(type='KDLoss')))
