"""The normalization a teacher from a model hub (timm, HuggingFace) gets when its config gives none:

shared by the hubs' teacher modules.
"""

from mmengine.config import Config


def configured_preprocessing(config: Config) -> dict:
    """The data preprocessor settings a teacher config gives: its top-level ``data_preprocessor``
    with the model's own on top."""
    return dict(config.get('data_preprocessor') or {},
                **(config.model.get('data_preprocessor') or {}))


def set_hub_normalization(config: Config, given: dict, mean: list, std: list) -> None:
    """Make the teacher model's preprocessor normalize RGB inputs (mmcv loads BGR) with the hub's
    ``mean``/``std`` on 0-255 pixels, keeping the other ``given`` settings."""
    config.model.data_preprocessor = dict(given, type=given.get('type', 'ClsDataPreprocessor'),
                                          mean=mean, std=std, to_rgb=True)
