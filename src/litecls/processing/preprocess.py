"""From any image input to the model's ready input tensor: decode, resize, normalise, quantize."""

from __future__ import annotations

import numpy as np

from litecls.processing.image import ImageInput, ImageLimits, prepare_image
from litecls.processing.postprocess import Normalization, quantize_input
from litecls.runtime.interpreter import ImageInputSpec

#: Normalisation assumed for a float model without metadata: pixels to [-1, 1],
#: the convention of TF's MobileNet and EfficientNet-Lite.
DEFAULT_FLOAT_MEAN = 127.5
DEFAULT_FLOAT_STD = 127.5


def default_normalization(spec: ImageInputSpec) -> tuple[float, float]:
    """``(mean, std)`` for a model whose metadata does not say.

    A float input gets :data:`DEFAULT_FLOAT_MEAN` / :data:`DEFAULT_FLOAT_STD`.
    A quantized input gets the values that make the quantized input equal the
    raw pixel (uint8) or ``pixel - 128`` (int8), as the TFLite Task Library
    feeds integer models without normalisation options.
    """
    if spec.dtype == np.float32 or spec.scale <= 0:
        return DEFAULT_FLOAT_MEAN, DEFAULT_FLOAT_STD
    std = 1.0 / spec.scale
    # (p - mean) / std / scale + zero_point == p (+ -128 for int8)  <=>  mean == zero_point (+ 128)
    mean = float(spec.zero_point) + (128.0 if spec.dtype == np.int8 else 0.0)
    return mean, std


def is_model_sized(image: object, spec: ImageInputSpec) -> bool:
    """True for a uint8 array already of the input's size (HxWxC, or HxW for 1 channel)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        return False
    if image.shape == (spec.height, spec.width, spec.channels):
        return True
    return spec.channels == 1 and image.shape == (spec.height, spec.width)


def preprocess(image: ImageInput, input_spec: ImageInputSpec, mean: Normalization, std: Normalization,
               crop_pct: float = 1.0, interpolation: str = "bilinear", policy: str = "crop",
               limits: ImageLimits | None = None) -> np.ndarray:
    """The ``[1, H, W, C]`` input tensor of dtype ``input_spec.dtype`` for ``image``.

    ``image`` is a path, bytes, PIL image or uint8 array. A uint8 array that
    already has the input's height, width and channels is used as it is (no
    decode, no resize), so callers that prepare their own frames pay only for
    normalisation. Otherwise :func:`litecls.processing.image.prepare_image`
    decodes, orients and resizes (``policy`` "crop" with ``crop_pct``, or
    "squash"), raising :class:`litecls.errors.ImageError` for a bad image or
    one over ``limits`` (default :data:`litecls.processing.image.DEFAULT_LIMITS`).
    """
    if is_model_sized(image, input_spec):
        pixels = image.reshape(input_spec.height, input_spec.width, input_spec.channels)  # type: ignore[union-attr]
    else:
        pixels = prepare_image(image, input_spec.size, input_spec.channels, crop_pct=crop_pct,
                               interpolation=interpolation, policy=policy, limits=limits)
    tensor = quantize_input(pixels, input_spec.dtype, input_spec.scale, input_spec.zero_point, mean, std)
    return np.ascontiguousarray(tensor[None])
