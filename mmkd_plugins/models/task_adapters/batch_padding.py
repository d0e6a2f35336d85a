"""Whether a detector teacher takes the student's batches: padding to a size multiple."""

from mmengine.model import BaseModel


def pad_size_divisor(detector: BaseModel) -> int:
    """The multiple that ``detector``'s data preprocessor pads batches to (1: no padding)."""
    return int(getattr(detector.data_preprocessor, 'pad_size_divisor', 1) or 1)


def check_teacher_takes_student_padding(student: BaseModel, teacher: BaseModel,
                                        field: str) -> None:
    """A detector teacher whose config pads batches to a multiple of ``d_t`` (NAS-FPN and
    DyHead: 128, CARAFE and FPG: 64; their necks merge levels of exactly halved sizes) needs
    batches of that multiple: the teacher runs on the student's batch, so the student's
    multiple ``d_s`` must be one of ``d_t``'s multiples. Otherwise the teacher's coarse maps
    have other sizes than the student's (or its neck fails).

    Args:
        student: The student detector.
        teacher: The teacher detector.
        field: Where the teacher sits in the config, for the message.

    Raises:
        ValueError: ``d_s`` is not a multiple of ``d_t``, naming the student's field to set.
    """
    student_divisor, teacher_divisor = pad_size_divisor(student), pad_size_divisor(teacher)
    if student_divisor % teacher_divisor:
        raise ValueError(
            f'model.student.data_preprocessor.pad_size_divisor: the teacher pads batches to a '
            f'multiple of {teacher_divisor}, the student to {student_divisor}; the teacher '
            f'({field}) runs on the student\'s batches, so its feature maps would not match the '
            f'student\'s. Pad the student\'s batches to a multiple of {teacher_divisor} too '
            f'(e.g. data_preprocessor=dict(pad_size_divisor={teacher_divisor}) in the student '
            'model)')
