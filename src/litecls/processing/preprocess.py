"""From any image input to the model's ready input tensor: decode, resize, normalise, quantize.

The settings come from one :class:`litecls.processing.config.ProcessingConfig`
(see :func:`litecls.processing.config.resolve_processing`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from litecls.processing.config import ProcessingConfig, normalize
from litecls.processing.image import ImageInput, ImageLimits
from litecls.processing.region import ImageProcessingOptions
from litecls.runtime.interpreter import ImageInputSpec

Normalization = float | Sequence[float] | np.ndarray


def is_model_sized(image: object, spec: ImageInputSpec) -> bool:
    """True for a uint8 array already of the input's size (HxWxC, or HxW for 1 channel)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        return False
    if image.shape == (spec.height, spec.width, spec.channels):
        return True
    return spec.channels == 1 and image.shape == (spec.height, spec.width)


def prepare_pixels(image: ImageInput, input_spec: ImageInputSpec, config: ProcessingConfig,
                   limits: ImageLimits | None = None,
                   region: ImageProcessingOptions | None = None) -> np.ndarray:
    """The uint8 HxWxC pixels that :func:`preprocess` normalises and quantizes.

    A uint8 array that already has the input's height, width and channels is
    used as it is (no decode, no resize), so callers that prepare their own
    frames pay only for normalisation.

    Args:
        image: a path, bytes, PIL image or uint8 array.
        input_spec: the model's image input.
        config: how to decode and resize.
        limits: the memory budget of one image (default
            :data:`litecls.processing.image.DEFAULT_LIMITS`).
        region: region of interest and rotation, applied before resizing.

    Returns:
        A uint8 array of shape (height, width, channels).

    Raises:
        ImageError: the image cannot be read or decoded, or is over ``limits``.
        ValueError: the region does not fit the image.
    """
    if (region is None or region.is_identity) and is_model_sized(image, input_spec):
        return image.reshape(input_spec.height, input_spec.width, input_spec.channels)  # type: ignore[union-attr]
    return config.prepare(image, limits, region)


def preprocess(image: ImageInput, input_spec: ImageInputSpec, config: ProcessingConfig,
               limits: ImageLimits | None = None,
               region: ImageProcessingOptions | None = None) -> np.ndarray:
    """The ``[1, H, W, C]`` input tensor of dtype ``input_spec.dtype`` for ``image``.

    Args:
        image: a path, bytes, PIL image or uint8 array (see :func:`prepare_pixels`).
        input_spec: the model's image input (size, dtype, quantization).
        config: decoding, resizing and normalisation settings.
        limits: the memory budget of one image (see :func:`prepare_pixels`).
        region: region of interest and rotation, applied before resizing.

    Returns:
        A C-contiguous array ready for ``Interpreter.set_tensor``.

    Raises:
        ImageError: the image cannot be read or decoded, or is over ``limits``.
        ValueError: the region does not fit the image.
    """
    pixels = prepare_pixels(image, input_spec, config, limits, region)
    tensor = quantize_input(pixels, input_spec.dtype, input_spec.scale, input_spec.zero_point,
                            config.mean, config.std)
    return np.ascontiguousarray(tensor[None])


def _per_channel(value: Normalization, what: str, channels: int) -> np.ndarray:
    """``value`` as a float32 array that broadcasts over the last (channel) axis."""
    array = np.asarray(value, dtype=np.float32).reshape(-1)
    if array.size not in (1, channels):
        raise ValueError(f"{what} needs 1 or {channels} values (one per channel), got {array.size}")
    if what == "std" and np.any(array == 0):
        raise ValueError("std must not be 0")
    return array


def quantize_input(pixels: np.ndarray, dtype: np.dtype | type, scale: float = 0.0, zero_point: int = 0,
                   mean: Normalization = 0.0, std: Normalization = 1.0) -> np.ndarray:
    """Turn an ``...xC`` pixel array (uint8 or float, 0-255) into a model input of ``dtype``.

    The model expects the real value ``(pixel - mean) / std`` (``mean``/``std``:
    one value or one per channel). A float32 input gets that value; a uint8 or
    int8 input gets it quantized with the tensor's own ``scale`` and
    ``zero_point``: ``round(value / scale + zero_point)``, clipped to the type.

    When the two steps together map each pixel to itself plus a whole number
    (e.g. mean 127, std 128, scale 1/128, zero point 127), the shift is done in
    integer arithmetic, so a uint8 input that takes raw pixels gets them
    exactly. ``scale == 0`` (an integer input without quantization
    parameters) means the model takes raw pixels: uint8 as is, int8 as
    ``pixel - 128``; ``mean``/``std`` are then ignored.
    """
    dtype = np.dtype(dtype)
    channels = pixels.shape[-1] if pixels.ndim else 1
    if dtype == np.float32:
        mean_a, std_a = _per_channel(mean, "mean", channels), _per_channel(std, "std", channels)
        if pixels.dtype == np.uint8:
            return _lookup(pixels, normalize(_LEVELS[:, None], mean_a, std_a))
        return normalize(pixels, mean_a, std_a)
    if dtype not in (np.uint8, np.int8):
        raise ValueError(f"unsupported input dtype {dtype.name}; expected float32, uint8 or int8")
    info = np.iinfo(dtype)
    if scale <= 0:
        gain, offset = np.ones(1, np.float32), np.full(1, 0 if dtype == np.uint8 else -128, np.float32)
    else:
        mean_a, std_a = _per_channel(mean, "mean", channels), _per_channel(std, "std", channels)
        gain = 1.0 / (std_a.astype(np.float64) * scale)
        offset = zero_point - mean_a * gain
    shift = np.rint(offset)
    if (pixels.dtype == np.uint8 and np.all(np.abs(gain - 1) < 1e-6) and np.all(np.abs(offset - shift) < 1e-4)
            and np.all(shift == shift[0])):
        # An integer shift of the raw pixels: exact, and much cheaper than float maths.
        step = int(shift[0])
        if step == 0 and dtype == np.uint8:
            return pixels
        if step == -128 and dtype == np.int8:
            return (pixels ^ np.uint8(0x80)).view(np.int8)  # p - 128 without widening
        return np.clip(pixels.astype(np.int16) + step, info.min, info.max).astype(dtype)
    levels = _LEVELS[:, None] if pixels.dtype == np.uint8 else pixels.astype(np.float32)
    values = np.clip(np.rint(levels * gain.astype(np.float32) + offset.astype(np.float32)),
                     info.min, info.max)
    return _lookup(pixels, values.astype(dtype)) if pixels.dtype == np.uint8 else values.astype(dtype)


#: The 256 values a uint8 pixel can take, for the lookup tables of :func:`quantize_input`.
_LEVELS = np.arange(256, dtype=np.float32)


def _lookup(pixels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table[pixel, channel]`` for each pixel of a uint8 ``...xC`` array (``table``: 256 x 1 or C).

    The same float32 arithmetic done once per pixel value instead of once per
    pixel, so the result is identical and a 224x224x3 frame takes a few
    hundred microseconds instead of one or two milliseconds (5-25 % of an
    EfficientNet-Lite0 inference).
    """
    if table.shape[1] == 1:
        return np.take(table[:, 0], pixels, mode="clip")
    out = np.empty(pixels.shape, dtype=table.dtype)
    for channel in range(pixels.shape[-1]):
        np.take(table[:, channel], pixels[..., channel], out=out[..., channel], mode="clip")
    return out
