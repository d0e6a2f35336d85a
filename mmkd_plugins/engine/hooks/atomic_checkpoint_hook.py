"""mmengine's CheckpointHook, with ``last_checkpoint`` written atomically and old checkpoints
removed only once the new one is complete."""

import os.path as osp
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.runner import Runner

from mmkd_plugins.checkpoint import atomic_write_bytes
from mmkd_plugins.registry import HOOKS


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """:class:`mmengine.hooks.CheckpointHook` (same arguments) that loses nothing when a run is
    killed while saving.

    mmengine's hook removes the oldest checkpoint beyond ``max_keep_ckpts`` *before* writing
    the new one (with ``max_keep_ckpts=1``, a crash while saving leaves no checkpoint at all)
    and writes ``work_dir/last_checkpoint``, which ``--resume`` reads, with a plain ``open``
    (a crash then leaves it empty or torn). Here the new checkpoint is written first (atomically,
    through the file backend of :mod:`mmkd_plugins.checkpoint.atomic_files`), then
    ``last_checkpoint`` atomically, and only then is the oldest checkpoint removed.

    Use it by naming its type in the inherited checkpoint hook, which keeps the stock settings
    (interval, ``max_keep_ckpts``, ``save_best``): ``default_hooks = dict(checkpoint=dict(
    type='mmkd_plugins.AtomicCheckpointHook'))``.
    """

    def _save_checkpoint_with_step(self, runner: Runner, step: int, meta: dict) -> None:
        """Record ``step`` among the kept checkpoints, save it, then remove the one it pushed out.

        The kept list is recorded before saving, as mmengine's hook does, so that the checkpoint
        holds it with its own step (a resumed run then keeps ``max_keep_ckpts`` checkpoints, not one
        more).
        """
        pushed_out = self._keep(runner, step)
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir, filename, self.file_client_args, save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
            backend_args=self.backend_args, **self.args)
        if is_main_process():
            atomic_write_bytes(osp.join(runner.work_dir, 'last_checkpoint'),
                               self.last_ckpt.encode())
            if pushed_out is not None:
                self._remove_checkpoint(pushed_out)

    def _keep(self, runner: Runner, step: int) -> Optional[int]:
        """Add ``step`` to the ``max_keep_ckpts`` newest checkpoints (and the message hub).

        Returns:
            The step of the checkpoint that no longer is among them, or None.
        """
        if self.max_keep_ckpts <= 0:
            return None
        if self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step:
            return None  # this step was saved twice (e.g. as the latest and as the best)
        pushed_out = None
        if len(self.keep_ckpt_ids) == self.max_keep_ckpts:  # a deque of that maximal length
            pushed_out = self.keep_ckpt_ids.popleft()
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        return pushed_out

    def _remove_checkpoint(self, step: int) -> None:
        """Delete the checkpoint of ``step`` (a file, or the folder deepspeed saves)."""
        path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(step))
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):
            self.file_backend.rmtree(path)
