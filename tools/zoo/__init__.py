"""The model-zoo sweep behind ``tools/zoo_sweep.py``: planning, case configs, runs, report."""
