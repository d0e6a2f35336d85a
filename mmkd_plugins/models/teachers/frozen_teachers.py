"""Frozen teachers held outside a model's module tree.

A distiller's teacher is frozen: nothing should train, average, synchronise or save it. As a
registered submodule it would still be seen by everything that walks the module tree: the optimizer
constructors of mmengine (which put parameters that need no gradient into the param groups too),
``EMAHook`` (which deep-copies the whole model and averages every parameter each iteration), DDP,
SyncBN conversion, ``init_weights`` and ``state_dict``. Held as a plain attribute, it is seen by
none of them; moving the model (``.to()``, ``.cuda()``) still moves it, and a deep copy (the EMA
model) shares it instead of copying it.
"""

import copy
from typing import TYPE_CHECKING, Callable, List

from torch import nn

if TYPE_CHECKING:  # a mixin of nn.Module subclasses: their nn.Module is its super()
    _ModuleMixinBase = nn.Module
else:
    _ModuleMixinBase = object


class HoldsFrozenTeachers(_ModuleMixinBase):
    """Mixin for an ``nn.Module`` that keeps its frozen teachers out of its module tree.

    Subclasses attach each teacher with :meth:`attach_frozen` and list them in
    :meth:`frozen_teachers`.
    """

    def attach_frozen(self, name: str, teacher: nn.Module) -> None:
        """Make ``teacher`` the attribute ``name`` without registering it as a submodule."""
        object.__setattr__(self, name, teacher)

    def frozen_teachers(self) -> List[nn.Module]:
        """The teachers held outside the module tree."""
        raise NotImplementedError

    def _apply(self, fn: Callable, recurse: bool = True):
        """``nn.Module._apply`` (behind ``.to()``, ``.cuda()``, ``.float()``, ...), applied to the
        frozen teachers too."""
        super()._apply(fn, recurse)
        for teacher in self.frozen_teachers():
            teacher._apply(fn, recurse)
        return self

    def __deepcopy__(self, memo: dict):
        """A deep copy that shares the frozen teachers (EMAHook's averaged copy of the model needs
        no second teacher)."""
        for teacher in self.frozen_teachers():
            memo[id(teacher)] = teacher
        copied = self.__class__.__new__(self.__class__)
        memo[id(self)] = copied
        for key, value in self.__dict__.items():
            object.__setattr__(copied, key, copy.deepcopy(value, memo))
        return copied
