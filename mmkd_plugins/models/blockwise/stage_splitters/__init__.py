"""The stage splitters of the backbone families block-wise distillation knows, registered on import;
see :mod:`mmkd_plugins.models.blockwise.backbone_stages` for what a split is."""

from . import convolutional, not_splittable, transformers  # noqa: F401  (registration)
