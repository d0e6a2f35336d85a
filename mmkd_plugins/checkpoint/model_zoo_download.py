"""Downloading model-zoo checkpoints once per node into torch hub's cache, verified by the hash that
OpenMMLab and torchvision put in their file names.

The file of ``https://.../name-<hex>.pth`` is ``$TORCH_HOME/hub/checkpoints/name-<hex>.pth``, the
place ``torch.hub.load_state_dict_from_url`` uses, so a file already there is used offline (and,
having been placed by the user, is not re-verified). A downloaded file is kept only if its
SHA-256 starts with ``<hex>``. Under distributed training the first process of each node
downloads while the others wait; every process then fails with the same real cause if the
download failed, instead of waiting at a barrier until it times out.
"""

import hashlib
import os
import os.path as osp
import re
import tempfile
from typing import Optional
from urllib.parse import urlparse

import torch
from mmengine.dist import all_gather_object, get_dist_info

# OpenMMLab's and torchvision's model-zoo names end in '-<first hex digits of the SHA-256>.pth'.
HASH_IN_NAME = re.compile(r'-([a-f0-9]{8,})\.[a-z]+$')


class CheckpointDownloadError(OSError):
    """A checkpoint URL could not be downloaded (network, HTTP or file-system error)."""


class CheckpointHashError(CheckpointDownloadError):
    """A downloaded checkpoint's SHA-256 does not match the hash in its file name."""


def cache_path_of(url: str) -> str:
    """Where torch hub keeps the download of ``url``: ``$TORCH_HOME/hub/checkpoints/<basename>``."""
    return osp.join(torch.hub.get_dir(), 'checkpoints', osp.basename(urlparse(url).path))


def expected_hash_prefix(url: str) -> Optional[str]:
    """The SHA-256 prefix that the file name of ``url`` promises, or None."""
    match = HASH_IN_NAME.search(osp.basename(urlparse(url).path))
    return match.group(1) if match else None


def sha256_of(path: str) -> str:
    """The hex SHA-256 digest of a file."""
    digest = hashlib.sha256()
    with open(path, 'rb') as file:
        for block in iter(lambda: file.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def download_verified(url: str, local_path: str) -> None:
    """Download ``url`` to ``local_path``, keeping it only if its hash matches its name.

    Raises:
        CheckpointHashError: the file's SHA-256 does not start with the name's hash (a
            truncated or tampered download); nothing is written to ``local_path``.
        CheckpointDownloadError: the download itself failed.
    """
    folder = osp.dirname(local_path)
    os.makedirs(folder, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f'.{osp.basename(local_path)}.', dir=folder)
    os.close(handle)
    try:
        try:
            torch.hub.download_url_to_file(url, partial, progress=False)
        except Exception as error:  # urllib's HTTPError/URLError, OSError, ...
            raise CheckpointDownloadError(f'cannot download {url}: {error}') from error
        expected = expected_hash_prefix(url)
        if expected is not None:
            actual = sha256_of(partial)
            if not actual.startswith(expected):
                raise CheckpointHashError(
                    f'{url}: the downloaded file is truncated or tampered: its SHA-256 is '
                    f'{actual}, but its name promises one starting with {expected}; it was '
                    'not kept')
        os.replace(partial, local_path)
    finally:
        if osp.exists(partial):
            os.remove(partial)


def _local_rank(rank: int) -> int:
    """The process's rank within its node (``LOCAL_RANK`` of torchrun/slurm launchers)."""
    return int(os.environ.get('LOCAL_RANK', rank))


def cached_download(url: str) -> str:
    """The local file of ``url``, downloaded once per node if it is not cached yet.

    Returns:
        ``$TORCH_HOME/hub/checkpoints/<basename of the url>``.

    Raises:
        CheckpointDownloadError: on every process, when the download failed on any of them
            (the message names the process and the cause).
    """
    local_path = cache_path_of(url)
    rank, world_size = get_dist_info()
    failure = None
    if _local_rank(rank) == 0 and not osp.isfile(local_path):
        try:
            download_verified(url, local_path)
        except CheckpointDownloadError as error:
            failure = error
    if world_size > 1:  # also the barrier: every process waits for its node's download
        causes = all_gather_object(None if failure is None else
                                   (type(failure) is CheckpointHashError, str(failure)))
        first = next((r for r, cause in enumerate(causes) if cause is not None), None)
        if first is not None:
            is_hash_error, message = causes[first]
            error_type = CheckpointHashError if is_hash_error else CheckpointDownloadError
            raise error_type(f'process {first}: {message}') from failure
    elif failure is not None:
        raise failure
    return local_path
