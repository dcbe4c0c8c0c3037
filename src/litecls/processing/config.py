"""How an image becomes a model's input: one dataclass, and the one function that resolves it.

Classify, evaluate, training (feature extraction, augmentation's last step,
calibration of custom models), the zoo's calibration, the benchmarks and the
tests all take their settings from :func:`resolve_processing`. A file that
litecls exports records its resize settings in its metadata (see
:data:`litecls.metadata.PROCESSING_FILE`), so it is prepared the same way on
any machine, with no zoo lookup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from litecls.processing.image import ImageInput, ImageLimits, prepare_image, resize_and_crop

if TYPE_CHECKING:
    from PIL import Image

    from litecls.metadata.types import ModelMetadata
    from litecls.models.registry import ModelConfig
    from litecls.processing.region import ImageProcessingOptions
    from litecls.runtime.interpreter import ImageInputSpec

RESIZE_POLICIES = ("crop", "squash")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "lanczos")
#: Normalisation assumed for a float model that does not say: pixels to [-1, 1],
#: the convention of TF's MobileNet and EfficientNet-Lite.
DEFAULT_FLOAT_MEAN = 127.5
DEFAULT_FLOAT_STD = 127.5
#: Format tag of the resize settings stored in a model's metadata.
PROCESSING_FORMAT = "litecls.processing/1"
_RESIZE_KEYS = ("resize_policy", "crop_pct", "interpolation")


def normalize(pixels: np.ndarray, mean: float | Sequence[float], std: float | Sequence[float]) -> np.ndarray:
    """``(pixels - mean) / std`` in float32: the one place litecls normalises pixels outside a graph.

    Args:
        pixels: pixel values (uint8 or float, 0-255), channels last.
        mean: one value, or one per channel, in pixel units.
        std: one value, or one per channel, in pixel units.

    Returns:
        A float32 array of the same shape.
    """
    return (np.asarray(pixels, np.float32) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)


@dataclass(frozen=True)
class ProcessingConfig:
    """Everything that turns an image into a model's input tensor.

    ``input_size`` is ``(height, width)``; ``channels`` 3 (RGB) or 1 (grey).
    ``resize_policy`` "crop": scale the short side to ``size / crop_pct``
    keeping the aspect ratio and cut the centre; "squash": resize to the input
    size ignoring the aspect ratio. ``interpolation``: the PIL resampling
    filter. ``mean``/``std`` (pixel units, one value or one per channel): the
    input expects ``(pixel - mean) / std``.
    """

    input_size: tuple[int, int]
    channels: int = 3
    resize_policy: str = "crop"
    crop_pct: float = 1.0
    interpolation: str = "bilinear"
    mean: tuple[float, ...] = (DEFAULT_FLOAT_MEAN,)
    std: tuple[float, ...] = (DEFAULT_FLOAT_STD,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "mean", tuple(float(v) for v in np.atleast_1d(self.mean)))
        object.__setattr__(self, "std", tuple(float(v) for v in np.atleast_1d(self.std)))
        self.validate()

    def validate(self) -> None:
        """Check every setting.

        Raises:
            ValueError: naming the first setting that cannot work.
        """
        if len(self.input_size) != 2 or min(self.input_size) < 1:
            raise ValueError(f"input_size must be (height, width) of positive integers, "
                             f"got {self.input_size}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.resize_policy not in RESIZE_POLICIES:
            raise ValueError(f"resize_policy must be one of {RESIZE_POLICIES}, got {self.resize_policy!r}")
        if not (isinstance(self.crop_pct, (int, float)) and 0.0 < self.crop_pct <= 1.0):
            raise ValueError(f"crop_pct must be in (0, 1], got {self.crop_pct!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")
        for name, values in (("mean", self.mean), ("std", self.std)):
            if len(values) not in (1, self.channels):
                raise ValueError(f"{name} needs 1 or {self.channels} values (one per channel), "
                                 f"got {len(values)}")
            if not all(math.isfinite(v) for v in values):
                raise ValueError(f"{name} must be finite numbers, got {values}")
        if any(v == 0 for v in self.std):
            raise ValueError(f"std must not be 0, got {self.std}")

    def prepare(self, image: ImageInput, limits: ImageLimits | None = None,
                region: ImageProcessingOptions | None = None) -> np.ndarray:
        """Decode, orient, convert, cut and rotate (``region``) and resize ``image``.

        Args:
            image: the image (path, bytes, PIL image or array).
            limits: the memory budget of one image (default
                :data:`litecls.processing.image.DEFAULT_LIMITS`).
            region: region of interest and rotation, applied before resizing.

        Returns:
            An HxWxC uint8 array of the input size.

        Raises:
            ImageError: the image cannot be read or decoded, or is over ``limits``.
            ValueError: the region does not fit the image.
        """
        return prepare_image(image, self.input_size, self.channels, crop_pct=self.crop_pct,
                             interpolation=self.interpolation, policy=self.resize_policy, limits=limits,
                             region=region)

    def resize(self, image: Image.Image) -> np.ndarray:
        """Resize an already decoded, upright image of the right mode to the input size (uint8 HxWxC).

        Args:
            image: a PIL image in RGB (or L for one channel).

        Returns:
            An HxWxC uint8 array.
        """
        array = np.asarray(resize_and_crop(image, self.input_size, self.crop_pct, self.interpolation,
                                           self.resize_policy), dtype=np.uint8)
        return array[..., None] if array.ndim == 2 else array

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """``(pixels - mean) / std`` as float32, for uint8 pixels in NHWC or HWC order.

        Args:
            pixels: uint8 (or float) pixel values, channels last.

        Returns:
            A float32 array of the same shape.
        """
        return normalize(pixels, self.mean, self.std)

    def resize_settings(self) -> dict[str, Any]:
        """The resize settings as stored in a model's metadata (``format``, policy, crop, interpolation)."""
        return {"format": PROCESSING_FORMAT, "resize_policy": self.resize_policy,
                "crop_pct": self.crop_pct, "interpolation": self.interpolation}


def default_normalization(spec: ImageInputSpec) -> tuple[float, float]:
    """``(mean, std)`` for a model whose metadata does not say.

    A float input gets :data:`DEFAULT_FLOAT_MEAN` / :data:`DEFAULT_FLOAT_STD`.
    A quantized input gets the values that make the quantized input equal the
    raw pixel (uint8) or ``pixel - 128`` (int8), as the TFLite Task Library
    feeds integer models without normalisation options.

    Args:
        spec: the model's image input.

    Returns:
        ``(mean, std)`` in pixel units.
    """
    if spec.dtype == np.float32 or spec.scale <= 0:
        return DEFAULT_FLOAT_MEAN, DEFAULT_FLOAT_STD
    std = 1.0 / spec.scale
    # (p - mean) / std / scale + zero_point == p (+ -128 for int8)  <=>  mean == zero_point (+ 128)
    mean = float(spec.zero_point) + (128.0 if spec.dtype == np.int8 else 0.0)
    return mean, std


def check_resize_settings(settings: dict[str, Any]) -> None:
    """Check resize settings read from a model's metadata (see :meth:`ProcessingConfig.resize_settings`).

    Args:
        settings: the decoded JSON object.

    Raises:
        ValueError: an unknown format or an invalid value.
    """
    found = settings.get("format", PROCESSING_FORMAT)
    if not (isinstance(found, str) and found.split("/")[0] == PROCESSING_FORMAT.split("/")[0]):
        raise ValueError(f"unknown format {found!r} (expected {PROCESSING_FORMAT!r})")
    values = {key: settings[key] for key in _RESIZE_KEYS if settings.get(key) is not None}
    ProcessingConfig(input_size=(1, 1), **values)


def _from_metadata(meta: ModelMetadata) -> dict[str, Any]:
    found: dict[str, Any] = {"mean": meta.mean, "std": meta.std} if meta.mean and meta.std else {}
    stored = meta.processing or {}
    found.update({key: stored[key] for key in _RESIZE_KEYS if stored.get(key) is not None})
    return found


def resolve_processing(input_spec: ImageInputSpec | None = None, metadata: ModelMetadata | None = None,
                       zoo: ModelConfig | None = None, **options: Any) -> ProcessingConfig:
    """The processing of a model: options, else the file's metadata, else the zoo config, else defaults.

    Args:
        input_spec: the model file's image input (size, channels, dtype), when there is a file.
        metadata: the file's TFLite metadata (normalisation; resize settings that litecls stored).
        zoo: the zoo config of the network, for a zoo name or a network not yet exported.
        **options: any :class:`ProcessingConfig` field set by the caller; ``None`` means "not set".

    Returns:
        The resolved config.

    Raises:
        ValueError: an unknown option name or an invalid value, or no input size from any source.
    """
    unknown = set(options) - {f.name for f in fields(ProcessingConfig)}
    if unknown:
        raise ValueError(f"unknown processing option(s): {', '.join(sorted(unknown))}")
    settings: dict[str, Any] = {}
    if input_spec is not None:
        settings.update(input_size=input_spec.size, channels=input_spec.channels)
        mean, std = default_normalization(input_spec)
        settings.update(mean=(mean,), std=(std,))
    if zoo is not None:
        zoo_settings = {"crop_pct": zoo.crop_pct, "interpolation": zoo.interpolation}
        if input_spec is None:  # a network, not a file: its own input size and normalisation
            zoo_settings.update(input_size=(zoo.input_size, zoo.input_size), mean=zoo.mean, std=zoo.std)
        settings.update(zoo_settings)
    if metadata is not None:
        settings.update(_from_metadata(metadata))
    settings.update({key: value for key, value in options.items() if value is not None})
    if "input_size" not in settings:
        raise ValueError("the input size is unknown: give input_size, a model file or a zoo config")
    return ProcessingConfig(**settings)
