"""Block-wise distillation's pieces: backbone stage splits, stage connectors, hybrid networks."""

from . import stage_splitters  # noqa: F401  (registers the splitters)
from .backbone_stages import (STAGE_SPLITTERS, BackboneStages, register_stage_splitter,
                              split_backbone, stages_cut_at)
from .connectors import ConvBNConnector, IdentityConnector
from .hybrid_networks import HybridNetworks, HybridOutput, hybrid_weights

__all__ = [
    'BackboneStages', 'ConvBNConnector', 'HybridNetworks', 'HybridOutput', 'IdentityConnector',
    'STAGE_SPLITTERS', 'hybrid_weights', 'register_stage_splitter', 'split_backbone',
    'stages_cut_at'
]
