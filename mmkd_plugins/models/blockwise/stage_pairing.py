"""Which teacher stage each student stage feeds in a hybrid: the stage pairs.

Hybrid N_i runs the student's stages 1..i, a connector, and the teacher from the stage after
stage t(i) on. When both backbones have the same number of stages, t(i) = i. Otherwise the default
pairs each student stage with the teacher stage whose state has the nearest stride (a map's or a
token grid's, both measured on one probe image, see
:mod:`~mmkd_plugins.models.blockwise.state_layouts`); a config may name the pairs instead
(``hybrids.stage_pairs``).
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

from .state_layouts import StateLayout


def stage_strides(layouts: Sequence[Optional[StateLayout]]) -> Optional[List[float]]:
    """The stride of each stage state, or None when a state's layout is unknown (tokens on no grid
    the probe found)."""
    if any(layout is None for layout in layouts):
        return None
    return [layout.stride for layout in layouts if layout is not None]


def nearest_stride_pairs(student_strides: Sequence[float],
                         teacher_strides: Sequence[float]) -> List[Tuple[int, int]]:
    """Each student stage (1-based) with the teacher stage of the nearest stride (on a log scale; of
    two as near, the later), in student stage order."""
    pairs = []
    for student_stage, stride in enumerate(student_strides, start=1):
        distances = [abs(math.log2(stride / other)) for other in teacher_strides]
        nearest = min(distances)
        teacher_stage = max(t for t, distance in enumerate(distances, start=1)
                            if distance == nearest)
        pairs.append((student_stage, teacher_stage))
    return pairs


def pair_stages(student_layouts: Sequence[Optional[StateLayout]],
                teacher_layouts: Sequence[Optional[StateLayout]],
                stage_pairs: Optional[Sequence[Sequence[int]]], field: str) -> Dict[int, int]:
    """Student stage -> the teacher stage it feeds (both 1-based).

    Args:
        student_layouts: The layouts of the student's stage states on the probe image (None
            where unknown).
        teacher_layouts: The teacher's, on the same image.
        stage_pairs: ``[[student stage, teacher stage], ...]`` from the config, or None: the
            same stage when the counts agree, else the nearest stride.
        field: Where ``stage_pairs`` sits in the config, for errors.

    Raises:
        ValueError: pairs out of range or not increasing on both sides, or a default that cannot
            be formed (states of unknown stride, or two student stages nearest to one teacher
            stage), naming ``field``.
    """
    num_student, num_teacher = len(student_layouts), len(teacher_layouts)
    if stage_pairs is None and num_student == num_teacher:
        return {stage: stage for stage in range(1, num_student + 1)}
    if stage_pairs is None:
        student_strides = stage_strides(student_layouts)
        teacher_strides = stage_strides(teacher_layouts)
        if student_strides is None or teacher_strides is None:
            raise ValueError(
                f'{field}: the student backbone has {num_student} stages and the teacher\'s '
                f'{num_teacher}, and some of their states are tokens on no grid the probe '
                'found, so no stride pairs them: name the pairs, [[student stage, teacher '
                'stage], ...]')
        pairs = nearest_stride_pairs(student_strides, teacher_strides)
        teacher_stages = [teacher for _, teacher in pairs]
        if len(set(teacher_stages)) != len(teacher_stages):
            raise ValueError(
                f'{field}: the student stages\' strides {_rounded(student_strides)} and the '
                f'teacher\'s {_rounded(teacher_strides)} pair several student stages with one '
                'teacher stage: name the pairs, [[student stage, teacher stage], ...]')
        return dict(pairs)
    return dict(_checked_pairs(stage_pairs, num_student, num_teacher, field))


def _checked_pairs(stage_pairs: Sequence[Sequence[int]], num_student: int, num_teacher: int,
                   field: str) -> List[Tuple[int, int]]:
    """The configured pairs, refused unless in range and increasing on both sides."""
    expected = (f'{field}: expected [[student stage, teacher stage], ...] with student stages in '
                f'1..{num_student} and teacher stages in 1..{num_teacher}, both increasing')
    try:
        pairs = [(int(student), int(teacher)) for student, teacher in stage_pairs]
    except (TypeError, ValueError) as error:
        raise ValueError(f'{expected}; got {stage_pairs!r}') from error
    in_range = all(1 <= s <= num_student and 1 <= t <= num_teacher for s, t in pairs)
    increasing = all(a[0] < b[0] and a[1] < b[1] for a, b in zip(pairs, pairs[1:]))
    if not pairs or not in_range or not increasing:
        raise ValueError(f'{expected}; got {stage_pairs!r}')
    return pairs


def _rounded(strides: Sequence[float]) -> List[float]:
    """Strides for a message."""
    return [round(stride, 2) for stride in strides]
