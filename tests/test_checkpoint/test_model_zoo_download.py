"""Model-zoo downloads: verified by the hash in the file name, once per node, and failing fast with
the real cause on every process.

A real HTTP server on 127.0.0.1 serves the files.
"""

import hashlib
import os
import os.path as osp
import threading
from collections import Counter
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mmkd_plugins.checkpoint import CheckpointDownloadError, CheckpointHashError, cached_download
from mmkd_plugins.checkpoint.model_zoo_download import cache_path_of
from mmkd_plugins.engine import shutdown_distributed
from mmkd_plugins.models.teachers.teacher_builder import load_checkpoint_file


class CountingHandler(SimpleHTTPRequestHandler):
    """Serves a folder and counts the GET requests of each path."""

    requests: Counter = Counter()

    def do_GET(self):  # noqa: N802 (http.server's name)
        CountingHandler.requests[self.path] += 1
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """(base URL, served folder, request counter) of a server on a free loopback port."""
    folder = tmp_path / 'served'
    folder.mkdir()
    CountingHandler.requests = Counter()
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), partial(CountingHandler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}', folder, CountingHandler.requests
    httpd.shutdown()
    httpd.server_close()


def checkpoint_bytes(seed: int = 0) -> bytes:
    path = f'/tmp/mmkd_ckpt_{os.getpid()}_{seed}.pth'
    torch.save({'state_dict': {'w': torch.full((3, ), float(seed))}}, path)
    with open(path, 'rb') as file:
        data = file.read()
    os.remove(path)
    return data


def serve_with_hash_name(folder, stem: str, data: bytes, hash_prefix: str = None) -> str:
    """Write ``data`` as ``<stem>-<hash>.pth`` (its true SHA-256 prefix unless given)."""
    hash_prefix = hash_prefix or hashlib.sha256(data).hexdigest()[:8]
    name = f'{stem}-{hash_prefix}.pth'
    (folder / name).write_bytes(data)
    return name


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    return tmp_path / 'torch_home'


def test_a_file_with_the_hash_its_name_promises_is_downloaded_once(server, torch_home):
    base, folder, requests = server
    name = serve_with_hash_name(folder, 'resnet', checkpoint_bytes())
    path = cached_download(f'{base}/{name}')
    assert path == cache_path_of(f'{base}/{name}') and osp.isfile(path)
    assert cached_download(f'{base}/{name}') == path
    assert requests[f'/{name}'] == 1


def test_a_tampered_download_is_refused_naming_the_url_and_both_hashes(server, torch_home):
    base, folder, _ = server
    data = checkpoint_bytes()
    name = serve_with_hash_name(folder, 'resnet', data, hash_prefix='deadbeef')
    url = f'{base}/{name}'
    actual = hashlib.sha256(data).hexdigest()
    with pytest.raises(CheckpointHashError, match=rf'{url}: .*SHA-256 is {actual}.*deadbeef'):
        cached_download(url)
    cache = osp.dirname(cache_path_of(url))
    assert os.listdir(cache) == []  # neither the file nor a partial download is kept
    # Through the teacher loader the hash error keeps its own message (not "cannot download").
    with pytest.raises(CheckpointHashError, match='truncated or tampered'):
        load_checkpoint_file(url, 'model.teacher.checkpoint')


def test_an_http_error_is_a_download_error_with_the_offline_hint(server, torch_home):
    base, _, _ = server
    url = f'{base}/missing-0123abcd.pth'
    with pytest.raises(FileNotFoundError, match=r'model.teacher.checkpoint: cannot download '
                       rf'{url}: HTTP Error 404.*put the file at {cache_path_of(url)}'):
        load_checkpoint_file(url, 'model.teacher.checkpoint')


WORLD_SIZE = 2


def _download_worker(rank, init_file, url, local_ranks, torch_homes, out_dir):
    os.environ['LOCAL_RANK'] = str(local_ranks[rank])
    os.environ['TORCH_HOME'] = torch_homes[rank]
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                            world_size=WORLD_SIZE)
    try:
        result = 'ok ' + cached_download(url)
    except CheckpointDownloadError as error:
        result = f'{type(error).__name__}: {error}'
    with open(osp.join(out_dir, f'rank{rank}.txt'), 'w') as file:
        file.write(result)
    shutdown_distributed()


def download_in_two_processes(tmp_path, url, local_ranks, torch_homes):
    mp.spawn(_download_worker, nprocs=WORLD_SIZE,
             args=(str(tmp_path / 'init'), url, local_ranks, torch_homes, str(tmp_path)))
    results = []
    for rank in range(WORLD_SIZE):
        with open(tmp_path / f'rank{rank}.txt') as file:
            results.append(file.read())
    (tmp_path / 'init').unlink(missing_ok=True)
    return results


def test_one_download_per_node_and_every_process_reads_it(server, tmp_path):
    base, folder, requests = server
    name = serve_with_hash_name(folder, 'teacher', checkpoint_bytes())
    url = f'{base}/{name}'
    shared = str(tmp_path / 'node_home')
    same_node = download_in_two_processes(tmp_path, url, [0, 1], [shared, shared])
    assert same_node[0] == same_node[1] and same_node[0].startswith('ok ')
    assert requests[f'/{name}'] == 1
    homes = [str(tmp_path / 'node0_home'), str(tmp_path / 'node1_home')]
    two_nodes = download_in_two_processes(tmp_path, url, [0, 0], homes)
    assert all(result.startswith('ok ') for result in two_nodes)
    assert requests[f'/{name}'] == 3  # once more on each of the two "nodes"


def test_a_failed_download_fails_every_process_with_the_real_cause(server, tmp_path):
    base, _, _ = server
    url = f'{base}/gone-0123abcd.pth'
    shared = str(tmp_path / 'node_home')
    results = download_in_two_processes(tmp_path, url, [0, 1], [shared, shared])
    for result in results:
        assert result.startswith('CheckpointDownloadError: process 0: cannot download')
        assert 'HTTP Error 404' in result
