"""The hybrid networks of block-wise distillation and their learned stage connectors.

``N_i = T_head ∘ T_n ∘ ... ∘ T_{i+1} ∘ C_i ∘ S_i ∘ ... ∘ S_1``: the student's first i stages
(taken from the student's own forward, not recomputed), a connector into the teacher's feature
space, the teacher's remaining stages, neck and head. The teacher part is the teacher's own
``forward`` with its stages 1..i standing in (:func:`~.backbone_stages.stages_cut_at`), so
whatever the forward does between and after stages (class tokens, norms on its outputs,
pooling) is done as in the teacher. Teacher modules are used with autograd on (their parameters
stay frozen), so gradients reach C_i and the student's stages 1..i.

Student stage i feeds the teacher stage t(i) it is paired with (:mod:`.stage_pairing`); where the
two states differ in layout (a CNN's map and a transformer's tokens, or token grids of different
sizes) the connector works on maps and a :class:`~.state_layouts.LayoutChange` puts its output in
the teacher state's layout, on the teacher's grid for the batch's input size.

When the teacher's backbone outputs, neck or head read the states of several stages (an FPN),
the hybrid gives them, for every such stage j <= i, the connected student state C_j(S_j), and
the teacher's own for the later stages; the stages j < i that nothing reads are skipped.
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Set, Tuple, Union

import torch
from mmengine.model import BaseModel
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..task_adapters.protocol import (RECORDED_DATA_SAMPLES, RECORDED_TEACHER_LOGITS,
                                      HybridTaskAdapter)
from .backbone_stages import (StageState, split_backbone, stages_cut_at, state_features,
                              with_features)
from .connectors import build_connector
from .stage_pairing import pair_stages
from .stage_probe import (check_stage_split, eval_mode, other_image_like, probe_image_size,
                          probe_stages, read_by_head, tensors_in, why_not_a_cut)
from .state_layouts import ImageSize, LayoutChange, describe_layouts, teacher_position_embedding

HYBRID_WEIGHTINGS = ('uniform', 'halving')


class HybridOutput(NamedTuple):
    """What one hybrid N_i produced.

    Attributes:
        stage: i, the last student stage in the hybrid (1-based).
        logits: Comparable logits, as the task adapter defines them: (B, K) for classifiers,
            per level (N·H·W, A·K) for dense detectors, per decoder layer (B·Q, K) for DETRs.
        task_losses: The teacher head's own losses on the hybrid's outputs (empty with
            ``task_losses=False``).
    """

    stage: int
    logits: Union[torch.Tensor, List[torch.Tensor]]
    task_losses: Dict[str, Union[torch.Tensor, List[torch.Tensor]]]


def hybrid_weights(weights: Union[str, Sequence[float]], stages: Sequence[int],
                   num_stages: int, field: str) -> List[float]:
    """The weight w_i of each hybrid's terms.

    Args:
        weights: ``'uniform'`` (all 1, as the research notes), ``'halving'``
            (w_i = 1 / 2^(n - i): hybrids with more teacher stages count less), or one number
            per hybrid.
        stages: The hybrids' stages i (1-based).
        num_stages: n.
        field: Config field for errors.
    """
    if weights == 'uniform':
        return [1.0] * len(stages)
    if weights == 'halving':
        return [0.5**(num_stages - stage) for stage in stages]
    if isinstance(weights, (list, tuple)) and len(weights) == len(stages):
        return [float(weight) for weight in weights]
    raise ValueError(f'{field}.weights: expected one of {HYBRID_WEIGHTINGS} or one number per '
                     f'hybrid stage {tuple(stages)}, got {weights!r}')


def _check_stages(stages: Optional[Sequence[int]], paired: Sequence[int],
                  field: str) -> Tuple[int, ...]:
    """The hybrids' stages, 1-based and sorted: student stages paired with a teacher stage; all of
    them by default."""
    if stages is None:
        return tuple(paired)
    chosen = tuple(sorted(set(stages)))
    if not chosen or not set(chosen) <= set(paired):
        raise ValueError(f'{field}.stages: expected student stages paired with a teacher stage, '
                         f'of {tuple(paired)}, got {stages!r}')
    return chosen


def _check_per_step(per_step: Optional[int], num_hybrids: int, field: str) -> Optional[int]:
    """``per_step`` checked against the number of hybrids; None when it runs them all."""
    if per_step is not None and not (isinstance(per_step, int) and 1 <= per_step <= num_hybrids):
        raise ValueError(f'{field}.per_step: expected a number of hybrids per step in '
                         f'1..{num_hybrids} (or None: all), got {per_step!r}')
    return None if per_step == num_hybrids else per_step


class HybridNetworks(nn.Module):
    """The hybrids N_i, i in ``stages``, and the connectors they need.

    Everything is inferred from probe forwards of both models at build time (a random
    (1, 3, probe_size, probe_size) image, in eval mode): the stage states, the connectors'
    channels and resize factors, which stage states the teacher's outputs, neck and head read,
    a check that each split is a cut of its backbone's forward, and a check that every hybrid
    given the teacher's own stage states computes the teacher's head outputs.

    Args:
        student: The student (its backbone is split; it is not stored here).
        teacher: The teacher (its later stages, neck and head run in the hybrids).
        adapter: The student's task adapter.
        stages: The i of each hybrid (a student stage), 1-based. Defaults to every paired
            student stage (the research notes' choice; with backbones of one stage count ``N_n``
            is the whole student backbone, ``C_n`` and the teacher's head).
        stage_pairs: ``[[student stage, teacher stage], ...]``: the teacher stage whose later
            stages each student stage feeds, increasing on both sides. Defaults to stage i
            with stage i when both backbones have n stages, else each student stage with the
            teacher stage of the nearest stride (see
            :mod:`~mmkd_plugins.models.blockwise.stage_pairing`).
        connector: Connector config without shapes. Defaults to
            ``dict(type='ConvBNConnector')``.
        weights: Per-hybrid weights w_i, see :func:`hybrid_weights`. Defaults to 'uniform'.
        probe_size: Side of the probe image. Defaults to the input size the student's
            backbone fixes (its split's ``input_size`` or its ``img_size``, as transformers
            whose position embeddings or attention biases fix it have; the hybrids run the
            teacher's later stages at the student's size), else the teacher's, else 384: every
            FPN level of a detector (stride 128 for
            P7) is then at least 3×3, as DDOD's and other heads' deformable convolutions need
            (mmcv refuses maps smaller than the kernel).
        per_step: How many of the hybrids run in each training step, k. None (default, the
            paper's form) runs all n. With k < n, step t runs the hybrids at positions
            (t·k + j) mod n, j < k, of ``stages`` (in turn, so every hybrid runs k times in n
            steps), their weights times n / k: averaged over n steps, each hybrid's terms have
            their full-form weight, at about k / n of the hybrids' cost. The step counter is
            the buffer ``step``, saved in checkpoints, so that a resumed run continues the turn.
            Its accuracy against the full form and against a fixed subset of the hybrids
            (``stages``): docs/user_guides/blockwise.md.
        recompute_teacher_tails: Whether each hybrid's teacher part (later stages, neck,
            head) keeps none of its activations for backward and recomputes them there, one
            hybrid at a time (activation checkpointing; the connectors stay outside it, so
            their batch-norm statistics are updated once). Same losses and gradients; less
            peak memory for one more forward of every tail (docs/benchmark.md). Defaults to
            False.
        task_losses: Whether each hybrid adds the teacher head's own losses on its outputs
            (``L_task(N_i)``, the paper's form). With False the hybrids are trained by their
            distillation and cross terms alone, and their teacher part computes only what the
            logits need (for RetinaNet, FCOS, ATSS and GFL heads the class branch: no box
            branch, label assignment or head loss). DETR-family students need False. Defaults to
            True.
        field: Config field for errors. Defaults to ``'model.hybrids'``.
    """

    step: torch.Tensor  # a buffer, with per_step only

    def __init__(self,
                 student: BaseModel,
                 teacher: BaseModel,
                 adapter: HybridTaskAdapter,
                 stages: Optional[Sequence[int]] = None,
                 stage_pairs: Optional[Sequence[Sequence[int]]] = None,
                 connector: Optional[dict] = None,
                 weights: Union[str, Sequence[float]] = 'uniform',
                 probe_size: Optional[int] = None,
                 per_step: Optional[int] = None,
                 recompute_teacher_tails: bool = False,
                 task_losses: bool = True,
                 field: str = 'model.hybrids') -> None:
        super().__init__()
        self.adapter = adapter
        if not isinstance(getattr(teacher, 'backbone', None), nn.Module):
            raise TypeError("model.teacher.config: block-wise distillation splits the teacher's "
                            f'backbone into stages; a {type(teacher).__name__} teacher has none '
                            '(mmpretrain ImageClassifier and mmdet detector teachers do)')
        adapter.check_hybrid_pair(student, teacher, 'model.teacher')
        self.student_split = split_backbone(student.backbone, 'model.student.backbone')
        self.teacher_split = split_backbone(teacher.backbone, 'model.teacher.config backbone')
        num_stages = self.student_split.num_stages
        if not isinstance(recompute_teacher_tails, bool):
            raise TypeError(f'{field}.recompute_teacher_tails: expected True or False, got '
                            f'{recompute_teacher_tails!r}')
        self.recompute_teacher_tails = recompute_teacher_tails
        if not isinstance(task_losses, bool):
            raise TypeError(f'{field}.task_losses: expected True or False, got '
                            f'{task_losses!r}')
        if task_losses and adapter.hybrid_task_losses_refusal:
            raise ValueError(f'{field}.task_losses: {adapter.hybrid_task_losses_refusal}')
        self.task_losses = task_losses

        # the hybrids run the teacher's later stages on the student's states: at its input size
        probe_shape = probe_image_size(probe_size, [(student.backbone, self.student_split),
                                                    (teacher.backbone, self.teacher_split)])
        probe = torch.randn(1, self.student_split.input_channels, *probe_shape,
                            generator=torch.Generator().manual_seed(0))
        with eval_mode(student, teacher):
            student_states, student_outputs = probe_stages(student.backbone, self.student_split,
                                                           probe, 'model.student.backbone')
            teacher_states, teacher_outputs = probe_stages(
                teacher.backbone, self.teacher_split, probe, 'model.teacher.config backbone')
            check_stage_split(student.backbone, self.student_split, student_states,
                              student_outputs, probe, 'model.student.backbone')
            student_layouts = describe_layouts(student_states, probe_shape, student.backbone)
            teacher_layouts = describe_layouts(teacher_states, probe_shape, teacher.backbone)
            self.pairs = pair_stages(student_layouts, teacher_layouts, stage_pairs,
                                     f'{field}.stage_pairs')
            self.stages = _check_stages(stages, sorted(self.pairs), field)
            self.weights = hybrid_weights(weights, self.stages, num_stages, field)
            self.per_step = _check_per_step(per_step, len(self.stages), field)
            # the stages whose states the teacher's backbone outputs, neck and head read, as
            # the student stages paired with them
            read_teacher_stages, read_outputs = read_by_head(
                adapter, teacher, self.teacher_split, teacher_states, probe)
            self.read_stages = self._paired_read_stages(read_teacher_stages, field)
            self.connected_stages = tuple(sorted(
                set(self.stages)
                | {stage for stage in self.read_stages if stage <= self.stages[-1]}))
            self._check_hybrids_of_the_teacher(teacher, teacher_states, teacher_outputs,
                                               read_outputs, probe, field)
        if self.per_step is not None:
            self.register_buffer('step', torch.zeros((), dtype=torch.long))
        connector = dict(connector or dict(type='ConvBNConnector'))
        self.connectors = nn.ModuleDict()
        self.layout_changes = nn.ModuleDict()
        for stage in self.connected_stages:
            student_state, teacher_state = (student_states[stage - 1],
                                            teacher_states[self.pairs[stage] - 1])
            student_layout, teacher_layout = (student_layouts[stage - 1],
                                              teacher_layouts[self.pairs[stage] - 1])
            student_features = state_features(student_state)
            teacher_features = state_features(teacher_state)
            if (student_layout is not None and teacher_layout is not None
                    and not student_layout.same_as(teacher_layout, student_state,
                                                   teacher_state)):
                position_embedding = (
                    teacher_position_embedding(teacher.backbone, teacher_features.shape[-1])
                    if teacher_layout.tokens else None)
                self.layout_changes[f'stage{stage}'] = LayoutChange(
                    student_layout, teacher_layout, teacher_state, position_embedding)
                student_features = student_layout.as_map(student_state, probe_shape)
                teacher_features = teacher_layout.as_map(teacher_state, probe_shape)
            self.connectors[f'stage{stage}'] = build_connector(
                connector, student_features, teacher_features,
                f'{field}.connector (stage {stage})')

    def _paired_read_stages(self, read_teacher_stages: Set[int], field: str) -> Set[int]:
        """The student stages paired with the teacher stages that the teacher's neck and head read.

        Raises:
            ValueError: a read teacher stage, at or before a hybrid's, with no student stage
                paired with it (the hybrid could not give the neck that state).
        """
        student_of = {teacher: student for student, teacher in self.pairs.items()}
        last_teacher_stage = self.pairs[self.stages[-1]]
        unpaired = sorted(stage for stage in read_teacher_stages
                          if stage <= last_teacher_stage and stage not in student_of)
        if unpaired:
            raise ValueError(
                f"{field}.stage_pairs: the teacher's neck and head read its stages "
                f'{sorted(read_teacher_stages)}, and no student stage is paired with '
                f'{unpaired} (pairs {sorted(self.pairs.items())}): pair one with each')
        return {student_of[stage] for stage in read_teacher_stages if stage in student_of}

    def _check_hybrids_of_the_teacher(self, teacher: BaseModel, states: List[StageState],
                                      backbone_outputs: tuple, read_outputs: Set[int],
                                      probe: torch.Tensor, field: str) -> None:
        """Check that every hybrid, given the teacher's own stage states, gives the teacher's neck
        and head the teacher's own backbone outputs (on another image: from the states alone), i.e.
        that the teacher's split is a cut of its forward there and that the stages a hybrid skips
        (before i, read by nothing) feed nothing the head reads.

        Raises:
            ValueError: naming the hybrid, and the stages it skips.
        """
        other_image = other_image_like(probe)
        positions = sorted(read_outputs)
        expected = tensors_in([backbone_outputs[position] for position in positions])
        for stage in self.stages:
            cut = {self.pairs[j] - 1: states[self.pairs[j] - 1]
                   for j in self.connected_stages if j <= stage}
            reason = why_not_a_cut(teacher.backbone, self.teacher_split, cut,
                                   self.pairs[stage] - 1, other_image, expected, positions,
                                   differs="returns outputs other than the teacher's")
            if reason is None:
                continue
            skipped = [j for j in range(1, stage) if j not in self.connected_stages]
            hint = (f'; its neck may read stages {skipped}, which the hybrid skips: add them to '
                    f'{field}.stages' if skipped else '')
            teacher_stage = self.pairs[stage]
            raise ValueError(
                f'model.teacher.config backbone: the forward of this '
                f'{type(teacher.backbone).__name__} continued from the state of stage '
                f'{teacher_stage} ({self.teacher_split.output_module(teacher_stage - 1)!r}) '
                f'{reason}: block-wise distillation cannot cut it there (hybrid N_{stage}){hint}')

    @property
    def student_modules(self) -> Dict[int, str]:
        """Stage (1-based) -> the student module (as in ``named_modules()``) whose output the
        hybrids take from the student's forward."""
        return {stage: f'backbone.{self.student_split.output_module(stage - 1)}'
                for stage in self.connected_stages}

    def scheduled(self) -> List[Tuple[int, float]]:
        """The hybrids of this step, as (stage, weight): all with their weights ``w_i``, or, with
        ``per_step``, this step's turn with ``w_i·n/k``; advances the turn in training."""
        if self.per_step is None:
            return list(zip(self.stages, self.weights))
        count, start = len(self.stages), int(self.step) * self.per_step
        positions = sorted((start + offset) % count for offset in range(self.per_step))
        if self.training:
            self.step += 1
        scale = count / self.per_step
        return [(self.stages[position], self.weights[position] * scale)
                for position in positions]

    def forward(self, student_states: Dict[int, StageState], teacher: BaseModel,
                inputs: torch.Tensor, data_samples: list, stages: Optional[Sequence[int]] = None,
                records: Optional[dict] = None,
                teacher_logits: object = None) -> List[HybridOutput]:
        """Run the hybrids.

        Args:
            student_states: Stage (1-based) -> the student's state of that stage in this step
                (e.g. (B, C_s, H, W)), for every stage in :attr:`student_modules`.
            teacher: The frozen teacher (eval mode).
            inputs: The batch's images, (B, 3, H, W): the teacher's forward reads their size
                (a ViT's patch grid), not their values.
            data_samples: The batch's data samples, for the hybrids' task losses (and a DETR
                teacher's image and padding shapes).
            stages: Which hybrids to run (see :meth:`scheduled`). Defaults to all of
                ``stages``.
            records: What the task adapter kept from the student's step
                (``record_student_step``: a two-stage student's sampled RoIs and targets).
            teacher_logits: The teacher's outputs for distillation in this step (the task
                adapter's ``teacher_logits``: a DETR teacher's distillation boxes, which its
                hybrids decode). The adapter's hybrid methods get them, and ``data_samples``,
                with ``records``.

        Returns:
            One :class:`HybridOutput` per stage run, in stage order. Connectors that none of
            them uses still join the first one's logits (its last level), times zero, so that
            every trainable parameter gets a gradient in every step (DDP requires it, unless told
            to look for unused parameters).
        """
        stages = self.stages if stages is None else tuple(stages)
        records = {**(records or {}), RECORDED_DATA_SAMPLES: data_samples,
                   RECORDED_TEACHER_LOGITS: teacher_logits}
        # hybrid N_i reads C_i, and C_j of the earlier stages j that the teacher's neck reads
        used = set(stages) | {j for j in self.read_stages if j <= max(stages)}
        image_size = (int(inputs.shape[-2]), int(inputs.shape[-1]))
        connected = {stage: self.connect(stage, student_states[stage], image_size)
                     for stage in self.connected_stages}
        results = []
        for stage in stages:
            features = {j: connected[j] for j in self.connected_stages if j <= stage}
            if self.recompute_teacher_tails:
                outputs = checkpoint(self._teacher_tail, teacher, stage, features, inputs,
                                     records, self.task_losses, use_reentrant=False)
            else:
                outputs = self._teacher_tail(teacher, stage, features, inputs, records,
                                             self.task_losses)
            if self.task_losses:
                results.append(HybridOutput(
                    stage, self.adapter.head_logits(teacher, outputs),
                    self.adapter.head_task_losses(teacher, outputs, data_samples, records)))
            else:
                results.append(HybridOutput(stage, outputs, {}))
        unused = [connected[j] for j in self.connected_stages if j not in used]
        if unused:
            zero = sum(state_features(state).sum() for state in unused) * 0.0
            first = results[0]
            # on the last level: the one a DETR pairing with a shallower student keeps
            logits = (list(first.logits[:-1]) + [first.logits[-1] + zero]
                      if isinstance(first.logits, (list, tuple)) else first.logits + zero)
            results[0] = first._replace(logits=logits)
        return results

    def connect(self, stage: int, student_state: StageState, image_size: ImageSize) -> StageState:
        """C_i(S_i): the student's state of a stage through its connector, in the layout of the
        state of the teacher stage it feeds.

        Args:
            stage: i, a connected student stage (1-based).
            student_state: The student's state of that stage in this step.
            image_size: The batch's input (H, W), for the teacher's grid.
        """
        connector = self.connectors[f'stage{stage}']
        if f'stage{stage}' in self.layout_changes:
            return self.layout_changes[f'stage{stage}'](student_state, connector, image_size)
        return with_features(student_state, connector(state_features(student_state)))

    def _teacher_tail(self, teacher: BaseModel, stage: int, connected: Dict[int, StageState],
                      inputs: torch.Tensor, records: Optional[dict], task_losses: bool):
        """The teacher's part of hybrid N_i: its forward from stage i on (later stages, neck, head).

        Args:
            teacher: The frozen teacher.
            stage: i.
            connected: Stage j -> C_j(S_j), for the connected stages j <= i, in the layout of
                the state of the teacher stage paired with j.
            inputs: The batch's images, for their size.
            records: As for :meth:`forward`.
            task_losses: Whether to return the head's outputs for its task losses too.

        Returns:
            The teacher head's outputs (the task adapter's ``head_forward``), or with
            ``task_losses=False`` only its logits (``head_class_logits``).
        """
        states = {self.pairs[j] - 1: state for j, state in connected.items()}
        with stages_cut_at(teacher.backbone, self.teacher_split, states,
                           last=self.pairs[stage] - 1):
            backbone_outputs = tuple(teacher.backbone(inputs))
        if task_losses:
            return self.adapter.head_forward(teacher, backbone_outputs, records)
        return self.adapter.head_class_logits(teacher, backbone_outputs, records)
