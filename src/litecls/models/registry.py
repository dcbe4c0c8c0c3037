"""The model registry: every zoo model's pretrained config in one place (timm style).

A :class:`ModelConfig` says everything needed to build, feed and ship a model:
input size, normalisation, resize/crop policy, label set, weights package and
licence. ``mean``/``std`` are in pixel units (0-255), applied as
``(pixel - mean) / std`` per RGB channel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from litecls.errors import UnknownModelError

if TYPE_CHECKING:  # torch is only needed to build models, not to describe them
    from torch import nn


@dataclass(frozen=True)
class PublishedAccuracy:
    """ImageNet-1k validation accuracy of a model as its authors published it.

    Attributes:
        top1: Top-1 accuracy in percent.
        top5: Top-5 accuracy in percent, or ``None`` where the source gives none.
        source: Where the figure is published (a URL).
    """

    top1: float
    top5: float | None
    source: str


@dataclass(frozen=True)
class ModelConfig:
    """Pretrained configuration of one zoo model.

    Attributes:
        name: The registry name (lower case, e.g. ``"efficientnet_lite0"``).
        display_name: The name shown to people (e.g. ``"EfficientNet-Lite0"``).
        description: One line on the model, for listings.
        input_size: The side of the square input, in pixels.
        mean: Per-channel (RGB) mean in pixel units (0-255), applied as ``(pixel - mean) / std``.
        std: Per-channel (RGB) standard deviation in pixel units.
        crop_pct: Fraction of the resized short side kept by the centre crop (e.g. 0.875 =
            224 of 256).
        interpolation: PIL resampling used for the resize ("bicubic" or "bilinear").
        weights_package: The pip package that carries the ImageNet weights.
        weights_license: The weights' licence.
        factory: Builds the PyTorch network, without weights (needs torch).
        num_classes: Classes the network outputs.
        published: ImageNet accuracy published for the float model.
        published_int8: ImageNet accuracy published for a full-integer int8 file of the
            same checkpoint, where the authors published one.
        int8_equalization: Strength of residual-stream equalization before int8
            calibration (0 = none); see litecls.export.equalize. Only where it
            measurably helps the int8 file.
    """

    name: str
    display_name: str
    description: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop_pct: float
    interpolation: str
    weights_package: str
    weights_license: str
    factory: Callable[[], nn.Module] = field(repr=False, compare=False)
    num_classes: int = 1000
    published: PublishedAccuracy | None = None
    published_int8: PublishedAccuracy | None = None
    int8_equalization: float = 0.0

    def published_accuracy(self, precision: str) -> tuple[PublishedAccuracy | None, str]:
        """The published ImageNet accuracy that applies to a file of this model at ``precision``.

        Args:
            precision: One of :data:`PRECISIONS`.

        Returns:
            ``(figure, kind)``: the int8 figure and ``"int8"`` for an int8 file where one is
            published; otherwise the float model's figure and ``"float"`` (``None`` if the
            authors published none). float16 and dynamic-range files keep float activations,
            so the float figure is theirs; an int8 file without its own figure borrows it.
        """
        if precision == "int8" and self.published_int8 is not None:
            return self.published_int8, "int8"
        return self.published, "float"

    @property
    def scalar_normalization(self) -> bool:
        """True when one mean/std serves all channels, so it can live in TFLite metadata."""
        return len(set(self.mean)) == 1 and len(set(self.std)) == 1


#: Precisions of the zoo's .tflite files, from the largest file to the smallest.
PRECISIONS = ("float32", "float16", "dynamic", "int8")

_REGISTRY: dict[str, ModelConfig] = {}


def register(config: ModelConfig) -> ModelConfig:
    """Add a model config to the registry.

    Args:
        config: the model's pretrained configuration.

    Returns:
        ``config``.

    Raises:
        ValueError: a model of that name is already registered.
    """
    if config.name in _REGISTRY:
        raise ValueError(f"model {config.name!r} is already registered")
    _REGISTRY[config.name] = config
    return config


def list_models() -> list[str]:
    """Names of every registered model.

    Returns:
        The names, in registration order.
    """
    return list(_REGISTRY)


def get_config(name: str) -> ModelConfig:
    """The config of model ``name``.

    Args:
        name: a model name (case, ``-`` and ``_`` do not matter).

    Returns:
        Its configuration.

    Raises:
        UnknownModelError: not a registered model (the message lists the valid ones).
    """
    key = name.strip().lower().replace("-", "_")
    try:
        return _REGISTRY[key]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; valid models: {', '.join(list_models())}"
        ) from None
