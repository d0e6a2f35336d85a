"""The interface every task adapter offers the distillers (a class of static methods)."""

from typing import ContextManager, Optional, Protocol, Tuple

import torch
from mmengine.model import BaseModel

from ..module_output_recorder import ModuleOutputRecorder


class TaskAdapter(Protocol):
    """What :class:`~mmkd_plugins.models.Distiller` asks of a task's adapter.

    Attributes:
        task: The task in words, for messages.
        teacher_computes: What the teacher's forward for distillation runs, for messages.
        teacher_logits_per_sample: Whether each row of the teacher logits belongs to one
            sample, in batch order (so that they can be cached per sample).
        teacher_inputs_resizable: Whether the batch may be resized to a teacher's input size.
        image_classification: Whether the logits are one class distribution per image (what a
            teacher's class index map and a soft-label store serve).
        teacher_bf16_refusal: Why a teacher of this task cannot run under bf16 autocast
            (``teacher.bf16``), or ``''`` where it can.
        compares_boxes: Whether :meth:`paired_outputs` gives ``'boxes'`` to compare too.
    """

    task: str
    teacher_computes: str
    teacher_logits_per_sample: bool
    teacher_inputs_resizable: bool
    image_classification: bool
    teacher_bf16_refusal: str
    compares_boxes: bool

    @staticmethod
    def supports(model: BaseModel) -> bool:
        """Whether ``model`` is a model of this task."""

    @staticmethod
    def recorded_modules(student: BaseModel) -> Tuple[str, ...]:
        """The student modules whose outputs (or inputs) hold its compared logits."""

    @staticmethod
    def teacher_runs(teacher: BaseModel, student: BaseModel, module_name: str) -> bool:
        """Whether the teacher's forward for distillation runs ``module_name``."""

    @staticmethod
    def check_pair(student: BaseModel, teacher: BaseModel, field: str) -> None:
        """Raise a ``TypeError``/``ValueError`` naming ``field`` if the teacher cannot teach this
        student."""

    @staticmethod
    def student_logits(student_calls: ModuleOutputRecorder):
        """The student's compared logits, read from its recorded step."""

    @staticmethod
    def teacher_logits(teacher: BaseModel, inputs: torch.Tensor,
                       student_calls: ModuleOutputRecorder, data_samples: Optional[list]):
        """The teacher's logits for the teacher-prepared batch ``inputs`` (B, 3, H, W) and its data
        samples (the student's recorded step in ``student_calls``)."""

    @staticmethod
    def paired_outputs(student_calls: ModuleOutputRecorder, student_outputs: dict,
                       teacher_outputs: dict) -> Tuple[dict, dict]:
        """The student's and one teacher's compared outputs as the losses compare them (by name:

        ``'logits'``, ``'boxes'``, module names): most adapters' as they are; where the student's
        depend on the teacher's (a DETR student decodes the teacher's boxes), computed here from the
        student's recorded step.
        """

# The keys that :class:`~mmkd_plugins.models.blockwise.HybridNetworks` adds to the ``records`` it
# gives the hybrid methods below: the batch's data samples, and the lone teacher's outputs for
# distillation (``teacher_logits``' result: a DETR teacher's distillation boxes). The dicts that
# ``record_student_step`` yields must not use them.
RECORDED_DATA_SAMPLES = 'data_samples'
RECORDED_TEACHER_LOGITS = 'teacher_logits'


class HybridTaskAdapter(TaskAdapter, Protocol):
    """What :class:`~mmkd_plugins.models.blockwise.HybridNetworks` also asks of every task adapter.

    Attributes:
        hybrid_task_losses_refusal: Why hybrids of this task cannot add the teacher head's own
            losses (``model.hybrids.task_losses=True``), or ``''`` where they can.
    """

    hybrid_task_losses_refusal: str

    @staticmethod
    def check_hybrid_pair(student: BaseModel, teacher: BaseModel, field: str) -> None:
        """Raise a ``TypeError`` naming the model whose design hybrids cannot take."""

    @staticmethod
    def record_student_step(student: BaseModel) -> ContextManager[dict]:
        """A context around the student's ``loss()`` that yields what the hybrids need from that
        step besides its outputs (a two-stage student's sampled RoIs and targets)."""

    @staticmethod
    def probe_records(model: BaseModel, probe: torch.Tensor) -> Optional[dict]:
        """The ``records`` that :meth:`head_forward` takes on the build-time probe image ``probe``
        (1, 3, H, W), or None where it takes none there."""

    @staticmethod
    def head_forward(model: BaseModel, backbone_outputs: tuple,
                     records: Optional[dict] = None):
        """``model``'s neck and head on given backbone outputs; ``records``: what
        :meth:`record_student_step` yielded, with the keys ``RECORDED_DATA_SAMPLES`` and
        ``RECORDED_TEACHER_LOGITS`` (or :meth:`probe_records`'s)."""

    @staticmethod
    def head_logits(model: BaseModel, head_outputs):
        """The comparable logits of :meth:`head_forward`'s result."""

    @staticmethod
    def head_class_logits(model: BaseModel, backbone_outputs: tuple,
                          records: Optional[dict] = None):
        """``head_logits(model, head_forward(model, backbone_outputs, records))``, computing only
        what the logits need (a hybrid without task losses)."""

    @staticmethod
    def head_task_losses(model: BaseModel, head_outputs, data_samples: list,
                         records: Optional[dict] = None) -> dict:
        """``model``'s own head losses on :meth:`head_forward`'s result."""
