"""Record the outputs of named submodules during a forward pass (forward hooks)."""

import difflib
from typing import Any, Dict, Iterable, List

from torch import nn
from torch.utils.hooks import RemovableHandle


def check_module_names(model: nn.Module, names: Iterable[str], field: str) -> None:
    """Raise a ``ValueError`` naming ``field`` if a module name does not exist in ``model``."""
    known = [name for name, _ in model.named_modules() if name]
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=5)
            raise ValueError(f"{field}: the model has no module named {name!r}; "
                             f"closest names: {', '.join(close) or 'none'}")


def names_a_loss(module_name: str) -> bool:
    """Whether ``module_name`` (as in ``named_modules()``) is, or is inside, a loss module
    (``head.loss_module``, ``bbox_head.loss_cls``): those run only in a model's ``loss()``."""
    return any(part.startswith('loss') for part in module_name.split('.'))


class ModuleOutputRecorder:
    """Context manager that records the inputs (positional and keyword) and outputs of named
    modules while it is active.

    Example::

        recorder = ModuleOutputRecorder(model, ['head'])
        with recorder:
            model.loss(inputs, data_samples)
        logits = recorder.outputs['head']

    Args:
        model: The model whose submodules are hooked.
        module_names: Names as in ``model.named_modules()``.
    """

    def __init__(self, model: nn.Module, module_names: Iterable[str]) -> None:
        self.model = model
        self.module_names = sorted(set(module_names))
        self.outputs: Dict[str, Any] = {}
        self.inputs: Dict[str, tuple] = {}
        self.keyword_inputs: Dict[str, Dict[str, Any]] = {}
        self._handles: List[RemovableHandle] = []

    def __enter__(self) -> 'ModuleOutputRecorder':
        self.outputs = {}
        self.inputs = {}
        self.keyword_inputs = {}
        modules = dict(self.model.named_modules())
        for name in self.module_names:
            self._handles.append(modules[name].register_forward_hook(self._recorder_for(name),
                                                                     with_kwargs=True))
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _recorder_for(self, name: str):

        def record(module: nn.Module, args: tuple, kwargs: Dict[str, Any], output: Any) -> None:
            self.inputs[name] = args
            self.keyword_inputs[name] = kwargs
            self.outputs[name] = output

        return record
