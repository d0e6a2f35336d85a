"""Teachers: config + checkpoint -> frozen model, input re-normalization, a bf16 forward, and the
sources of a distiller's teacher outputs (the live network, a per-sample cache in front of it, a
soft-label store)."""

from .frozen_teachers import HoldsFrozenTeachers
from .input_renormalizer import (InputRenormalizer, build_renormalizer, expected_input_size,
                                 normalization_of, resized_to)
from .stored_teacher import StoredTeacher
from .teacher_builder import (build_model_from_config, build_teacher, freeze, load_model_config,
                              load_state_dict_strictly, load_teacher_weights)
from .teacher_output_cache import TeacherOutputCache, sample_key
from .teacher_precision import bf16_autocast, check_bf16_supported, to_float32
from .teacher_sources import (BOXES, LOGITS, TEACHER_KEYS, TEACHER_OPTIONS, CachedTeacher,
                              LiveTeacher, TeacherSource, check_teacher_config)

__all__ = [
    'HoldsFrozenTeachers', 'InputRenormalizer', 'build_renormalizer', 'expected_input_size',
    'normalization_of', 'resized_to', 'build_teacher',
    'build_model_from_config', 'freeze', 'load_model_config', 'load_state_dict_strictly',
    'load_teacher_weights', 'TeacherOutputCache', 'sample_key', 'bf16_autocast',
    'check_bf16_supported', 'to_float32', 'BOXES', 'LOGITS', 'TEACHER_KEYS', 'TEACHER_OPTIONS',
    'CachedTeacher', 'LiveTeacher', 'TeacherSource', 'check_teacher_config', 'StoredTeacher'
]
