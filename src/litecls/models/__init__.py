"""Model definitions, their registry, and the zoo of deployable .tflite files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litecls.models import zoo_configs  # noqa: F401  (registers the zoo models)
from litecls.models.registry import ModelConfig, PublishedAccuracy, get_config, list_models, register

if TYPE_CHECKING:
    from torch import nn


def create_model(name: str, pretrained: bool = True) -> nn.Module:
    """Build zoo model ``name`` in eval mode, with its ImageNet weights unless ``pretrained=False``.

    Needs torch; describing models (:func:`get_config`) does not.

    Args:
        name: a registered model.
        pretrained: load the ImageNet weights.

    Returns:
        The PyTorch network (NCHW normalised input -> logits).

    Raises:
        UnknownModelError: ``name`` is not registered.
        MissingWeightsError: the weights package is not installed.
    """
    from litecls.models.weights import load_state_dict

    config = get_config(name)
    model = config.factory()
    if pretrained:
        model.load_state_dict(load_state_dict(config.weights_package), strict=True)
    return model.eval()


__all__ = ["ModelConfig", "PublishedAccuracy", "create_model", "get_config", "list_models", "register"]
