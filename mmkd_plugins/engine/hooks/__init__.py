"""Hooks of mmkd_plugins."""
from .export_student_hook import ExportStudentHook

__all__ = ['ExportStudentHook']
