"""How faithfully a top-k soft-label store serves each loss, per k and temperature.

A store keeps a view's k most probable classes of ``softmax(z_t / tau)``; the distiller
rebuilds logits in which the other C - k classes share the left-over mass equally. For each k
and tau this compares, batch by batch, the gradient of a loss with respect to the student's
logits when the target is the rebuilt logits with the gradient when it is the live teacher's
(cosine similarity of the flattened gradients, mean and minimum over the batches), for KD,
DIST's inter-class term alone and its intra-class term alone, and reports the kept mass (the
stored top-k's share of the probability, as a store's header records it).

Teacher: the digits demo teacher (``configs/demo/teacher_resnet18w32_digits.py`` and a trained
checkpoint) on the digits test images; student logits: standard normal (a student early in
training) and the teacher's own logits at half scale plus noise (a student that has learned).

Example:
    bash tools/run_demo.sh   # once: data/digits and work_dirs/digits_demo/teacher.pth
    python .dev_scripts/store_fidelity.py --teacher work_dirs/digits_demo/teacher.pth
"""

import argparse
import json
from typing import Callable, Dict, List

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import mmkd_plugins  # noqa: F401
from mmkd_plugins.checkpoint import safe_torch_load
from mmkd_plugins.models.losses import dist_loss, kd_loss
from mmkd_plugins.models.teachers import build_model_from_config, load_model_config
from mmkd_plugins.soft_labels import logits_from_soft_labels, top_k_soft_labels

TEACHER_CONFIG = 'configs/demo/teacher_resnet18w32_digits.py'
LOSSES: Dict[str, Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]] = {
    'KD': lambda student, teacher, tau: kd_loss(student, teacher, tau),
    'DIST inter-class': lambda student, teacher, tau: dist_loss(student, teacher, 1.0, 0.0, tau),
    'DIST intra-class': lambda student, teacher, tau: dist_loss(student, teacher, 0.0, 1.0, tau),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--teacher', default='work_dirs/digits_demo/teacher.pth')
    parser.add_argument('--data-root', default='data/digits')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--top-k', type=int, nargs='+', default=[1, 2, 3, 5, 10])
    parser.add_argument('--tau', type=float, nargs='+', default=[1.0, 2.0, 4.0])
    parser.add_argument('--out', default='work_dirs/store_fidelity.json')
    return parser.parse_args()


def teacher_logits(checkpoint: str, data_root: str, batch_size: int) -> List[torch.Tensor]:
    """The teacher's logits of the digits test images, (B, C) per batch."""
    init_default_scope('mmpretrain')
    teacher = build_model_from_config(load_model_config(TEACHER_CONFIG, '--teacher'))
    teacher.load_state_dict(safe_torch_load(checkpoint)['state_dict'])
    teacher.eval()
    cfg = Config.fromfile(TEACHER_CONFIG)
    loader_cfg = cfg.test_dataloader
    loader_cfg.dataset.data_root = data_root
    loader_cfg.batch_size = batch_size
    batches = []
    with torch.no_grad():
        for batch in Runner.build_dataloader(loader_cfg):
            data = teacher.data_preprocessor(batch, training=False)
            batches.append(teacher(data['inputs'], mode='tensor'))
    return [logits for logits in batches if len(logits) == batch_size]


def gradient(loss: Callable, student: torch.Tensor, teacher: torch.Tensor,
             tau: float) -> torch.Tensor:
    """The loss's gradient with respect to the student's logits, flattened."""
    student = student.detach().requires_grad_(True)
    return torch.autograd.grad(loss(student, teacher, tau), student)[0].flatten()


def fidelity(batches: List[torch.Tensor], top_k: int, tau: float) -> dict:
    """Kept mass and, per loss and student, the gradient cosine of store vs live teacher."""
    generator = torch.Generator().manual_seed(0)
    students = {
        'early student': lambda teacher: torch.randn(teacher.shape, generator=generator),
        'trained student': lambda teacher: 0.5 * teacher + torch.randn(teacher.shape,
                                                                       generator=generator),
    }
    num_classes = batches[0].shape[1]
    kept, cosines = [], {(loss, student): [] for loss in LOSSES for student in students}
    for live in batches:
        probabilities, classes = top_k_soft_labels(live, tau, top_k)
        kept.append(probabilities.float().sum(dim=1))
        rebuilt = logits_from_soft_labels(probabilities, classes, num_classes, tau)
        for student_name, make_student in students.items():
            student = make_student(live)
            for loss_name, loss in LOSSES.items():
                cosine = torch.nn.functional.cosine_similarity(
                    gradient(loss, student, live, tau), gradient(loss, student, rebuilt, tau),
                    dim=0)
                cosines[loss_name, student_name].append(float(cosine))
    kept_mass = torch.cat(kept)
    return dict(top_k=top_k, tau=tau, kept_mass_mean=float(kept_mass.mean()),
                kept_mass_min=float(kept_mass.min()),
                cosine={f'{loss} / {student}': dict(mean=sum(values) / len(values),
                                                    min=min(values))
                        for (loss, student), values in cosines.items()})


def main() -> None:
    args = parse_args()
    batches = teacher_logits(args.teacher, args.data_root, args.batch_size)
    results = [fidelity(batches, top_k, tau) for tau in args.tau for top_k in args.top_k]
    columns = list(results[0]['cosine'])
    print(f'{len(batches)} batches of {args.batch_size}; gradient cosine, mean (min over '
          'batches)\n')
    print('| tau | k | kept mass, mean (min) | ' + ' | '.join(columns) + ' |')
    print('|---|---|---|' + '---|' * len(columns))
    for result in results:
        cells = [f"{result['cosine'][column]['mean']:.3f} ({result['cosine'][column]['min']:.3f})"
                 for column in columns]
        print(f"| {result['tau']:g} | {result['top_k']} | {result['kept_mass_mean']:.3f} "
              f"({result['kept_mass_min']:.3f}) | " + ' | '.join(cells) + ' |')
    with open(args.out, 'w') as file:
        json.dump(dict(teacher=args.teacher, batch_size=args.batch_size, results=results), file,
                  indent=1)


if __name__ == '__main__':
    main()
