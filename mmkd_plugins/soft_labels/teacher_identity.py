"""What identifies the teacher whose outputs a soft-label store holds (written into the store's
header, compared with the distiller's ``teacher`` when it reads the store)."""

import os.path as osp
from typing import Dict, List, Optional

from mmkd_plugins.checkpoint.model_zoo_download import cache_path_of, sha256_of
from .pipeline_rewrite import as_plain


def checkpoint_file(checkpoint: Optional[str]) -> Optional[str]:
    """The local file of a checkpoint path or URL (torch hub's cache), if there is one."""
    if not checkpoint:
        return None
    if checkpoint.startswith(('http://', 'https://')):
        checkpoint = cache_path_of(checkpoint)
    return checkpoint if osp.isfile(checkpoint) else None


def teacher_identity(teacher: dict) -> Dict[str, Optional[str]]:
    """What identifies a teacher in a store's header: its config, cfg_options, class index map,
    checkpoint and the checkpoint file's SHA-256 (None when the file is not on this machine)."""
    local = checkpoint_file(teacher.get('checkpoint'))
    return dict(config=str(teacher.get('config')),
                cfg_options=as_plain(teacher.get('cfg_options')),
                class_index_map=as_plain(teacher.get('class_index_map')),
                checkpoint=teacher.get('checkpoint'),
                checkpoint_sha256=sha256_of(local) if local else None)


def teacher_differences(stored: dict, here: dict) -> List[str]:
    """How two teacher identities differ: config, cfg_options and the class index map must be equal;
    the checkpoints must have the same SHA-256 where both files are known, else the same name."""
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
