"""The teacher of a distiller trained from a soft-label store: its logits of each sample's
replayed view, read from the store; the teacher network is never built."""
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
import torch
from torch import nn

from mmkd_plugins.checkpoint.model_zoo_download import cache_path_of, sha256_of
from .pipeline_rewrite import as_plain
from .store import SoftLabelStore
from .stored_logits import logits_from_soft_labels
from .view_replay import VIEW_KEY

SOFT_LABEL_KEYS = ('store', 'allow_partial_intra_class')


def checkpoint_file(checkpoint: Optional[str]) -> Optional[str]:
    """The local file of a checkpoint path or URL (torch hub's cache), if there is one."""
    if not checkpoint:
        return None
    if checkpoint.startswith(('http://', 'https://')):
        checkpoint = cache_path_of(checkpoint)
    return checkpoint if osp.isfile(checkpoint) else None


def teacher_identity(teacher: dict) -> Dict[str, Optional[str]]:
    """What identifies a teacher in a store's header: its config, cfg_options, class index
    map, checkpoint and the checkpoint file's SHA-256 (None when the file is not on this
    machine)."""
    local = checkpoint_file(teacher.get('checkpoint'))
    return dict(config=str(teacher.get('config')),
                cfg_options=as_plain(teacher.get('cfg_options')),
                class_index_map=as_plain(teacher.get('class_index_map')),
                checkpoint=teacher.get('checkpoint'),
                checkpoint_sha256=sha256_of(local) if local else None)


def teacher_differences(stored: dict, here: dict) -> List[str]:
    """How two teacher identities differ: config, cfg_options and the class index map must be
    equal; the
    checkpoints must have the same SHA-256 where both files are known, else the same name."""
    differences = [f'{key}: {stored.get(key)!r} in the store, {here.get(key)!r} here'
                   for key in ('config', 'cfg_options', 'class_index_map')
                   if stored.get(key) != here.get(key)]
    if stored.get('checkpoint_sha256') and here.get('checkpoint_sha256'):
        if stored['checkpoint_sha256'] != here['checkpoint_sha256']:
            differences.append(f'checkpoint: SHA-256 {stored["checkpoint_sha256"][:12]}... in '
                               f'the store, {here["checkpoint_sha256"][:12]}... here')
    elif stored.get('checkpoint') != here.get('checkpoint'):
        differences.append(f'checkpoint: {stored.get("checkpoint")!r} in the store, '
                           f'{here.get("checkpoint")!r} here')
    return differences


class StoredTeacher:
    """The teacher's logits from a store (``model.soft_labels``), checked against the
    distiller's config at build time.

    Args:
        soft_labels: ``dict(store=<folder>, allow_partial_intra_class=False)``; with
            ``allow_partial_intra_class=True`` DIST's intra-class term is allowed from a store
            of fewer than all classes (see :meth:`check_losses`).
        teacher: The distiller's ``teacher`` config (compared with the store's teacher).
        field: Where ``soft_labels`` sits in the config, for errors.

    Raises:
        ValueError: unknown keys, or a store made for another teacher (naming what differs).
    """

    def __init__(self, soft_labels: dict, teacher: dict,
                 field: str = 'model.soft_labels') -> None:
        unknown = set(soft_labels) - set(SOFT_LABEL_KEYS)
        if unknown or 'store' not in soft_labels:
            raise ValueError(f'{field}: expected dict(store=<folder made by '
                             'tools/make_soft_labels.py>, allow_partial_intra_class=False), '
                             f'got keys {sorted(soft_labels)}')
        self.field = field
        self.allow_partial_intra_class = bool(soft_labels.get('allow_partial_intra_class',
                                                              False))
        self.store = SoftLabelStore.open(soft_labels['store'], f'{field}.store')
        header = self.store.header
        differences = teacher_differences(header['teacher'], teacher_identity(teacher))
        if differences:
            raise ValueError(f'{field}.store: {self.store.folder} holds the soft labels of '
                             'another teacher than model.teacher (' + '; '.join(differences)
                             + ')')
        self.tau, self.num_classes = float(header['tau']), int(header['num_classes'])
        self.top_k = int(header['top_k'])

    def check_student_classes(self, student_classes: Optional[int]) -> None:
        """Refuse a student of another class count."""
        if student_classes != self.num_classes:
            raise ValueError(f'{self.field}.store: the store holds {self.num_classes}-class '
                             f'soft labels; the student has {student_classes} classes '
                             '(model.student.head.num_classes)')

    def check_losses(self, losses: nn.ModuleDict, compares_logits: Dict[str, bool],
                     losses_field: str) -> None:
        """Each loss must compare logits with a softmax, at the store's temperature or a
        learned global one (CTKD); DIST's intra-class term needs every class stored.

        The intra-class term correlates each class's column over the batch; in a store of the
        top k < C classes, a sample's column of a class outside its top k is made up (the equal
        share of the left-over mass), so most columns are, and the term's gradient is not the
        live teacher's. It is refused unless ``allow_partial_intra_class=True``.

        Args:
            losses: The distillation losses by name.
            compares_logits: Name -> whether the loss compares logits (not named modules).
            losses_field: Where the losses sit in the config.
        """
        for name, loss in losses.items():
            field = f'{losses_field}.{name}'
            if not compares_logits[name]:
                raise ValueError(f'{field}: a soft-label store holds the teacher\'s class '
                                 'probabilities only; this loss compares named module outputs')
            if getattr(loss, 'activation', 'softmax') != 'softmax':
                raise ValueError(f"{field}: a soft-label store holds softmax probabilities; "
                                 f"activation={loss.activation!r} needs the teacher's logits")
            if (getattr(loss, 'gamma', 0) and self.top_k < self.num_classes
                    and not self.allow_partial_intra_class):
                raise ValueError(
                    f'{field}.gamma: DIST\'s intra-class term correlates each class over the '
                    f'batch, and the store {self.store.folder} keeps top_k={self.top_k} of '
                    f'{self.num_classes} classes per view, so the other classes\' columns are '
                    'made up (an equal share of the left-over probability) and its gradient is '
                    "not the live teacher's; make the store with --top-k "
                    f'{self.num_classes}, set gamma=0, or accept the approximation with '
                    f'{self.field}.allow_partial_intra_class=True')
            temperature = getattr(loss, 'temperature', None)
            if temperature is not None:
                if getattr(temperature, 'mode', 'global') != 'global':
                    raise ValueError(f'{field}.tau: an instance-wise temperature reads the '
                                     "teacher's logit values, which a store does not hold; use "
                                     "CurriculumTemperature(mode='global')")
                continue
            tau = getattr(loss, 'tau', None)
            if tau is not None and float(tau) != self.tau:
                raise ValueError(f'{field}.tau: the store {self.store.folder} holds '
                                 f'probabilities at tau={self.tau}, this loss softens at '
                                 f'tau={tau}; make the store with --tau {tau} or set the loss '
                                 'to the store\'s')

    def logits(self, data_samples: list, device: torch.device) -> torch.Tensor:
        """The teacher's logits of the batch's replayed views, rebuilt from the stored top-k
        (see :func:`~mmkd_plugins.soft_labels.stored_logits.logits_from_soft_labels`).

        Args:
            data_samples: The batch's samples, each with ``sample_idx`` and
                ``soft_label_view`` in its metainfo.
            device: Where the logits go.

        Returns:
            (B, C) float32.

        Raises:
            KeyError: a sample without its view index: the pipeline does not replay the store.
        """
        if any(VIEW_KEY not in sample.metainfo for sample in data_samples):
            raise KeyError(
                f'{self.field}: the batch\'s samples carry no {VIEW_KEY!r}: the training '
                'pipeline does not replay the store\'s views. The runner of the distillation '
                "configs sets it up (runner_type='mmkd_plugins.DistillationRunner'); with "
                'another runner call mmkd_plugins.soft_labels.use_soft_label_store(cfg) '
                'before building it')
        samples = np.array([int(sample.metainfo['sample_idx']) for sample in data_samples])
        views = np.array([int(sample.metainfo[VIEW_KEY]) for sample in data_samples])
        probabilities, classes = self.store.soft_labels(samples, views)
        return logits_from_soft_labels(torch.from_numpy(probabilities).to(device),
                                       torch.from_numpy(classes).to(device),
                                       self.num_classes, self.tau)
