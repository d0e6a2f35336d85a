"""Which teacher stage each student stage feeds in a hybrid: the stage pairs.

Hybrid N_i runs the student's stages 1..i, a connector, and the teacher from the stage after
stage t(i) on. When both backbones have the same number of stages, t(i) = i. Otherwise the default
pairs each student stage with the teacher stage whose state has the nearest stride (both
measured on one probe image); a config may name the pairs instead (``hybrids.stage_pairs``).
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

from .backbone_stages import StageState, state_features


def stage_strides(states: Sequence[StageState], probe_height: int) -> Optional[List[float]]:
    """The stride of each stage state, probe height / state height, or None when a state is not a
    (B, C, H, W) map (tokens carry no stride a pairing could read)."""
    strides = []
    for state in states:
        features = state_features(state)
        if features.dim() != 4:
            return None
        strides.append(probe_height / features.shape[-2])
    return strides


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


def pair_stages(student_states: Sequence[StageState], teacher_states: Sequence[StageState],
                probe_height: int, stage_pairs: Optional[Sequence[Sequence[int]]],
                field: str) -> Dict[int, int]:
    """Student stage -> the teacher stage it feeds (both 1-based).

    Args:
        student_states: The student's stage states on the probe image.
        teacher_states: The teacher's stage states on the same image.
        probe_height: The probe image's height, for the strides.
        stage_pairs: ``[[student stage, teacher stage], ...]`` from the config, or None: the
            same stage when the counts agree, else the nearest stride.
        field: Where ``stage_pairs`` sits in the config, for errors.

    Raises:
        ValueError: pairs out of range or not increasing on both sides, or a default that cannot
            be formed (token states, or two student stages nearest to one teacher stage), naming
            ``field``.
    """
    num_student, num_teacher = len(student_states), len(teacher_states)
    if stage_pairs is None and num_student == num_teacher:
        return {stage: stage for stage in range(1, num_student + 1)}
    if stage_pairs is None:
        student_strides = stage_strides(student_states, probe_height)
        teacher_strides = stage_strides(teacher_states, probe_height)
        if student_strides is None or teacher_strides is None:
            raise ValueError(
                f'{field}: the student backbone has {num_student} stages and the teacher\'s '
                f'{num_teacher}, and their states are not all feature maps, so no stride pairs '
                'them: name the pairs, [[student stage, teacher stage], ...]')
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
