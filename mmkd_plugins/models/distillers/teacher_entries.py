"""The teachers a distiller's config names: one (``teacher`` with ``distill_losses``) or several
(``teachers``), checked, each with its place in the config and its log keys."""

from typing import Dict, List, NamedTuple, Optional, cast

from ..teachers import TEACHER_KEYS, TEACHER_OPTIONS, check_teacher_config

SINGLE = 'teacher'  # the name of a lone teacher
TEACHER_ENTRY_KEYS = TEACHER_KEYS + ('distill_losses', 'weight')


class TeacherEntry(NamedTuple):
    """One teacher as the config gives it."""

    name: str  # 'teacher' for a lone teacher, else its key in ``teachers``
    config: dict  # the teacher's own keys (TEACHER_KEYS), checked
    losses: Dict[str, dict]  # its distillation losses' configs
    weight: float  # of its distillation losses
    field: str  # where it sits in the config: 'model.teacher' or 'model.teachers.<name>'
    losses_field: str  # where its losses sit: 'model.distill_losses' or '<field>.distill_losses'
    prefix: str  # of its loss keys: 'distill.' or 'distill.<name>.'
    log_suffix: str  # of its temperature keys: '' or '.<name>'


def teacher_entries(teacher: Optional[dict], distill_losses: Optional[Dict[str, dict]],
                    teachers: Optional[Dict[str, dict]],
                    soft_labels: Optional[dict]) -> List[TeacherEntry]:
    """The teachers of the distiller's arguments, checked.

    Raises:
        ValueError: neither or both of ``teacher`` and ``teachers``, a missing
            ``distill_losses``, a store with several teachers, or malformed entries (naming
            the field).
    """
    if (teacher is None) == (teachers is None):
        raise ValueError('model: give teacher=dict(...) with distill_losses=dict(...) for one '
                         'teacher, or teachers=dict(<name>=dict(..., distill_losses=...)) for '
                         'several; not both, not neither')
    if teachers is None:
        if distill_losses is None:
            raise ValueError('model.distill_losses: the losses of model.teacher are needed')
        # not None: exactly one of teacher and teachers is given (checked above)
        config = check_teacher_config(cast(dict, teacher), 'model.teacher')
        return [TeacherEntry(SINGLE, config, distill_losses, 1.0, 'model.teacher',
                             'model.distill_losses', 'distill.', '')]
    if distill_losses is not None or soft_labels is not None:
        raise ValueError('model.teachers: with several teachers, each entry holds its own '
                         'distill_losses, and a soft-label store (model.soft_labels) serves '
                         'one teacher only')
    if not teachers:
        raise ValueError('model.teachers: at least one teacher is needed')
    entries = []
    for name, cfg in teachers.items():
        field, cfg = f'model.teachers.{name}', dict(cfg)
        if '.' in name or set(cfg) - set(TEACHER_ENTRY_KEYS) or 'distill_losses' not in cfg:
            raise ValueError(f'{field}: expected a name without dots and dict(config=..., '
                             f'checkpoint=..., distill_losses=..., weight=1.0, '
                             f'{TEACHER_OPTIONS}), got keys {sorted(cfg)}')
        losses, weight = cfg.pop('distill_losses'), float(cfg.pop('weight', 1.0))
        entries.append(TeacherEntry(name, check_teacher_config(cfg, field), losses, weight,
                                    field, f'{field}.distill_losses', f'distill.{name}.',
                                    f'.{name}'))
    return entries
