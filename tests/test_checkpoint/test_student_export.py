"""Student-only export: prefix stripping, no silent overwrite, atomic writes."""

import pytest
import torch

from mmkd_plugins.checkpoint import export_student_checkpoint, extract_student_state_dict


def distiller_checkpoint():
    return {'meta': {'epoch': 2, 'dataset_meta': {'classes': ('a', 'b')}, 'cfg': 'x'},
            'state_dict': {'student.backbone.w': torch.ones(2), 'student.head.b': torch.zeros(1),
                           'connectors.0.w': torch.ones(1)}}


def test_only_student_keys_are_kept_without_prefix():
    student = extract_student_state_dict(distiller_checkpoint()['state_dict'])
    assert list(student) == ['backbone.w', 'head.b']


def test_non_distillation_checkpoint_is_refused():
    with pytest.raises(ValueError, match="no key starts with 'student.'"):
        extract_student_state_dict({'backbone.w': torch.ones(1)})


def test_export_writes_meta_and_refuses_to_overwrite(tmp_path):
    out = str(tmp_path / 'student.pth')
    export_student_checkpoint(distiller_checkpoint(), out, source='run/epoch_2.pth')
    saved = torch.load(out)
    assert list(saved['state_dict']) == ['backbone.w', 'head.b']
    assert saved['meta']['dataset_meta'] == {'classes': ('a', 'b')}
    assert saved['meta']['exported_from'] == 'run/epoch_2.pth' and 'cfg' not in saved['meta']
    with pytest.raises(FileExistsError, match='--force'):
        export_student_checkpoint(distiller_checkpoint(), out)
    export_student_checkpoint(distiller_checkpoint(), out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['student.pth']  # no temp file left
