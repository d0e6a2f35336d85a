"""The runner of distillation configs: what a distillation run needs from its config, applied
whichever script builds it."""

from typing import Union

from mmengine.config import Config, ConfigDict
from mmengine.runner import Runner

from mmkd_plugins.checkpoint import register_atomic_local_backend, register_weights_only_loaders
from mmkd_plugins.registry import RUNNERS
from mmkd_plugins.soft_labels import use_soft_label_store
from mmkd_plugins.version import untested_versions
from .cpu_distributed import setup_cpu_distributed, shutdown_distributed
from .resumed_seed import seed_of_resumed_run
from .student_optim_constructor import run_optim_constructor_on_student


@RUNNERS.register_module()
class DistillationRunner(Runner):
    """mmengine's :class:`~mmengine.runner.Runner` for distillation configs, so that this project's
    ``tools/train.py``, mmpretrain's and mmdet's own ``tools/train.py`` and ``mim train`` run the
    same experiment from one config (``runner_type`` in ``configs/_base_/distillation_runtime.py``).

    Building it makes mmengine, for the rest of the process, load checkpoints of every scheme
    weights-only with an exact allow-list
    (:func:`~mmkd_plugins.checkpoint.register_weights_only_loaders`) and write local files
    atomically (:func:`~mmkd_plugins.checkpoint.register_atomic_local_backend`), and it logs a
    warning for each host library of a version the project was not tested with.
    Before building the run, :meth:`from_cfg` completes the config:

    - a resumed run whose ``randomness.seed`` is None gets the seed the interrupted run drew
      (:func:`~mmkd_plugins.engine.seed_of_resumed_run`), so its samplers and workers are those
      of the uninterrupted run;
    - an optimizer constructor of the stock config runs on the student
      (:func:`~mmkd_plugins.engine.run_optim_constructor_on_student`);
    - with ``model.soft_labels``, the training pipeline replays the store's views
      (:func:`~mmkd_plugins.soft_labels.use_soft_label_store`);
    - launched with ``pytorch`` or ``slurm`` on a machine without GPUs, a gloo process group
      and DDP for CPU modules (:func:`~mmkd_plugins.engine.setup_cpu_distributed`), which
      :meth:`train` ends when training is done.

    Configs of stock models pass through unchanged.
    """

    @classmethod
    def from_cfg(cls, cfg: Union[Config, ConfigDict]) -> 'DistillationRunner':
        """Complete ``cfg`` in place (see the class docstring), then build the runner.

        Args:
            cfg: The merged config, with ``launcher`` and ``work_dir`` set, as the train
                scripts have it.
        """
        resumed_seed = seed_of_resumed_run(cfg)
        if resumed_seed is not None:
            cfg.randomness = dict(cfg.get('randomness') or {}, seed=resumed_seed)
        run_optim_constructor_on_student(cfg)
        use_soft_label_store(cfg)
        return super().from_cfg(setup_cpu_distributed(cfg))

    def __init__(self, *args, **kwargs):
        """As :class:`~mmengine.runner.Runner`, with mmengine's checkpoint loading and local writes
        made safe before anything is loaded or saved."""
        register_weights_only_loaders()
        register_atomic_local_backend()
        super().__init__(*args, **kwargs)
        for message in untested_versions():
            self.logger.warning(message)

    def train(self):
        """Train, then end a CPU process group (a gloo group alive at interpreter exit can abort a
        finished run).

        Returns:
            The trained model, as :meth:`mmengine.runner.Runner.train`.
        """
        model = super().train()
        shutdown_distributed()
        return model
