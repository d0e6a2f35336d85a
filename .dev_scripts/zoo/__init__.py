"""The model-zoo sweep behind ``.dev_scripts/zoo_sweep.py``: planning, case configs, runs,
report."""
