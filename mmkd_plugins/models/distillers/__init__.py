"""Distillers: models that wrap a student and a frozen teacher."""
from .distiller import Distiller, build_distill_loss
from .module_output_recorder import ModuleOutputRecorder, check_module_names

__all__ = ['Distiller', 'build_distill_loss', 'ModuleOutputRecorder', 'check_module_names']
