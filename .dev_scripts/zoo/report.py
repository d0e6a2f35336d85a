"""``docs/zoo_coverage.md`` from the sweep's results: counts, one row per family, not attempted."""

import datetime
from typing import Dict, List

STAGES = ('kd', 'dist', 'blockwise', 'export')
# Causes found by reading the failing code, for failures outside this project.
KNOWN_CAUSES = {
    ('mmpretrain', 'hivit'): (
        "mmpretrain's `HiViT` keeps `out_indices` in a default list that every instance shares "
        'and overwrites with its own depth, so the second HiViT built in a process (the '
        "teacher) makes the first (the student) return no feature map. Workaround: give the "
        "student's backbone its own list, `out_indices=[9]` for HiViT-T (checked: the student "
        'then returns its map and the teacher keeps `[23]`).'),
    ('mmdet', 'dcn'): (
        "the teacher's RoI extractor (`faster-rcnn_r50_fpn_dpool`: deformable RoI pooling) is an "
        'mmcv op without a CPU implementation; the student (deformable convolutions, which have '
        'one) trains alone. On a GPU the pair runs.'),
    ('mmdet', 'gn+ws'): (
        "mmengine's `package::path` names refuse a folder with `+` or `.` in its name "
        '(`mmdet::gn+ws/...`); write such a teacher config as a file path.'),
    ('mmdet', 'legacy_1.x'): (
        "mmengine's `package::path` names refuse a folder with `+` or `.` in its name "
        '(`mmdet::legacy_1.x/...`); write such a teacher config as a file path.'),
    ('mmdet', 'albu_example'): 'the stock pipeline needs `albumentations`, not installed here.',
    ('mmdet', 'instaboost'): 'the stock pipeline needs `instaboostfast`, not installed here.',
    ('mmdet', 'panoptic_fpn'): 'the stock config needs `panopticapi`, not installed here.',
    ('mmdet', 'carafe'): "CARAFE upsampling is an mmcv op without a CPU implementation.",
    ('mmdet', 'pvt'): 'the PVT backbone downloads its pretrained weights when built (no network).',
    ('mmdet', 'crowddet'): ("CrowdDet's multi-instance assigner needs CrowdHuman-style "
                            'annotations, which the generated set does not have.'),
    ('mmdet', 'cascade_rpn'): 'the Fast R-CNN config reads precomputed proposal files.',
    ('mmdet', 'fast_rcnn'): 'Fast R-CNN reads precomputed proposal files.',
    ('mmdet', 'guided_anchoring'): 'the Fast R-CNN config reads precomputed proposal files.',
    ('mmdet', 'libra_rcnn'): 'the Fast R-CNN config reads precomputed proposal files.',
    ('mmpretrain', 'shufflenet_v1'): (
        'an artefact of the sweep: the stock 5000-iteration warm-up outlasts 300 epochs of the '
        "generated set's two batches, and mmengine refuses the schedule; on ImageNet it fits."),
    ('mmpretrain', 'shufflenet_v2'): (
        'an artefact of the sweep: the stock 5000-iteration warm-up outlasts 300 epochs of the '
        "generated set's two batches, and mmengine refuses the schedule; on ImageNet it fits."),
    ('mmpretrain', 'maskfeat'): (
        'the stock fine-tuning config sets both `type` and `by_epoch` in `train_cfg`, which '
        'mmengine refuses for any run.'),
}
MARKS = {'ok': 'yes', 'refused': 'refused', 'failed': '**fails**'}


def family_verdict(result: dict) -> str:
    """``'distills'`` (KD and DIST train, export loads), ``'refused'`` (a build-time message),
    ``'stock fails'`` (the stock config does not train without distillation either) or
    ``'fails'``."""
    stages = result.get('stages', {})
    if all(stages.get(stage, {}).get('status') == 'ok' for stage in ('kd', 'dist', 'export')):
        return 'distills'
    kd = stages.get('kd', {}).get('status')
    if kd == 'refused':
        return 'refused'
    return 'stock fails' if stages.get('stock', {}).get('status') == 'failed' else 'fails'


def _cell(stage: dict) -> str:
    if not stage:
        return '–'
    mark = MARKS.get(stage['status'], stage['status'])
    if stage['status'] == 'ok' and 'value' in stage:
        return f"{mark} ({stage['value']:.3g})"
    return mark


def _message(stages: Dict[str, dict]) -> str:
    parts = []
    seen = set()
    for name in ('teacher', ) + STAGES + ('stock', ):
        stage = stages.get(name) or {}
        if stage.get('status') in ('refused', 'failed') and stage.get('message'):
            text = (stage['message'].splitlines()[-1] if stage['status'] == 'failed' else
                    ' '.join(stage['message'].split()))
            text = text.split('; supported backbones')[0]  # the list is in the page's header
            if stage.get('where') and stage['status'] == 'failed':
                text += f" [{stage['where']}]"
            if text not in seen:
                seen.add(text)
                parts.append(f'{name}: {text}')
    return '<br>'.join(parts).replace('|', '\\|')[:900]


def _short(config: str) -> str:
    return config.split('::', 1)[1].split('/', 1)[1][:-3] if '::' in config else config


def coverage_markdown(results: List[dict], families: Dict[str, List[str]], command: str,
                      versions: str) -> str:
    """The coverage page.

    Args:
        results: One sweep result per family swept (``plan`` fields, ``stages``, ``seconds``).
        families: Zoo -> every family of its config tree (unswept ones are listed as such).
        command: The command that produced the results.
        versions: The package versions the sweep ran on.
    """
    by_family = {(r['zoo'], r['family']): r for r in results}
    lines = ['# Model-zoo coverage', '',
             f'Generated by `{command}` on {datetime.date.today().isoformat()} ({versions}). '
             'Per family of the installed config trees, a student and a teacher config of the '
             'family (the smallest model; the biggest of its input and patch size up to the '
             'parameter limit), a distillation config written as the README says (inheriting '
             'the stock config and the runtime fragment), random teacher weights at the '
             'checkpoint path, generated data in the '
             'stock pipeline, two iterations through `tools/train.py`, and the exported '
             'student strict-loaded into the stock student config. How the data, image sizes '
             'and pretrained weights are changed: `.dev_scripts/zoo/case_configs.py`.', '',
             'Columns: KD and DIST train in one Distiller (the last logged value of each loss); '
             'block-wise is a second run; "refused" is a build-time message of this project '
             '(quoted), "**fails**" an error elsewhere (its last line and where it was raised; '
             'the stock config is then trained without distillation too, and the message says '
             '"stock: ..." when that fails as well). '
             'Block-wise needs a stage splitter for the student\'s and the teacher\'s backbones '
             '(the families split, and those refused with their structural reasons: '
             '[docs/user_guides/blockwise.md](user_guides/blockwise.md#stage-splits); adding one '
             'is a single function in `mmkd_plugins/models/blockwise/stage_splitters/`).',
             '']
    for zoo, names in families.items():
        swept = [by_family[(zoo, name)] for name in names if (zoo, name) in by_family]
        cases = [r for r in swept if 'not_attempted' not in r]
        verdicts = [family_verdict(r) for r in cases]
        lines += [f'## {zoo}', '',
                  f'{len(names)} families: {len(cases)} swept, '
                  f"{sum(v == 'distills' for v in verdicts)} distill, "
                  f"{sum(v == 'refused' for v in verdicts)} refused with a message, "
                  f"{sum(v == 'fails' for v in verdicts)} fail, "
                  f"{sum(v == 'stock fails' for v in verdicts)} whose stock config fails "
                  'without distillation too; '
                  f"{len(swept) - len(cases)} not attempted; "
                  f'{len(names) - len(swept)} not swept yet.', '',
                  '| family | student → teacher | kind | verdict | KD | DIST | block-wise | export '
                  '| s | message |', '|---|---|---|---|---|---|---|---|---|---|']
        for result in cases:
            stages = result.get('stages', {})
            pair = (_short(result['student']) if result['student'] == result['teacher'] else
                    f"{_short(result['student'])} → {_short(result['teacher'])}")
            lines.append('| ' + ' | '.join([
                result['family'], pair, result['kind'], family_verdict(result),
                *(_cell(stages.get(stage)) for stage in STAGES),
                f"{result.get('seconds', 0):.0f}", _message(stages)]) + ' |')
        causes = [(family, cause) for (cause_zoo, family), cause in KNOWN_CAUSES.items()
                  if cause_zoo == zoo and (zoo, family) in by_family
                  and family_verdict(by_family[(zoo, family)]) != 'distills']
        if causes:
            lines += ['', 'Known causes of failures outside this project (read in the failing '
                      'code, or the sweep\'s own limits):', '']
            lines += [f'- {family}: {cause}' for family, cause in causes]
        attempted_not = [r for r in swept if 'not_attempted' in r]
        if attempted_not:
            lines += ['', 'Not attempted (out of scope: not a classifier / one- or two-stage '
                      'detector, or no config builds):', '']
            lines += [f"- {r['family']}: {r['not_attempted']}" for r in attempted_not]
        unswept = [name for name in names if (zoo, name) not in by_family]
        if unswept:
            lines += ['', 'Not swept yet: ' + ', '.join(unswept) + '.']
        lines.append('')
    return '\n'.join(lines)
