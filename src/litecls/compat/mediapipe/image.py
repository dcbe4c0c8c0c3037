"""``mediapipe.Image`` and ``mediapipe.ImageFormat``: pixels in memory, from a numpy array or a file."""

from __future__ import annotations

import enum
import os
from typing import Any

import numpy as np

from litecls.processing.image import open_image


class ImageFormat(enum.IntEnum):
    """Pixel layouts, with MediaPipe's names and values (litecls classifies SRGB, SRGBA and GRAY8)."""

    UNKNOWN = 0
    SRGB = 1
    SRGBA = 2
    GRAY8 = 3
    GRAY16 = 4
    SRGB48 = 7
    SRGBA64 = 8
    VEC32F1 = 9
    VEC32F2 = 12
    VEC32F4 = 13


_CHANNELS = {ImageFormat.SRGB: 3, ImageFormat.SRGBA: 4, ImageFormat.GRAY8: 1, ImageFormat.GRAY16: 1,
             ImageFormat.SRGB48: 3, ImageFormat.SRGBA64: 4, ImageFormat.VEC32F1: 1, ImageFormat.VEC32F2: 2,
             ImageFormat.VEC32F4: 4}
_DTYPES = {ImageFormat.SRGB: np.uint8, ImageFormat.SRGBA: np.uint8, ImageFormat.GRAY8: np.uint8,
           ImageFormat.GRAY16: np.uint16, ImageFormat.SRGB48: np.uint16, ImageFormat.SRGBA64: np.uint16,
           ImageFormat.VEC32F1: np.float32, ImageFormat.VEC32F2: np.float32, ImageFormat.VEC32F4: np.float32}


class Image:
    """An immutable image: a copy of the pixels it was made from (MediaPipe's ``Image``).

    Args:
        image_format: the layout of ``data``.
        data: HxW or HxWxC pixels whose dtype and channels match ``image_format``.

    Raises:
        ValueError: dimensions, dtype or channels that do not match the format.
    """

    def __init__(self, image_format: ImageFormat, data: np.ndarray) -> None:
        data = np.asarray(data)
        if data.ndim not in (2, 3):
            raise ValueError(f"Unsupported number of dimensions:{data.ndim}")
        try:
            fmt = ImageFormat(image_format)
        except ValueError:
            raise ValueError(f"Unsupported image format: {image_format}") from None
        if fmt not in _DTYPES:
            raise ValueError(f"Unsupported image format: {fmt!r}")
        if data.dtype != _DTYPES[fmt]:
            raise ValueError(f"{fmt.name} needs {np.dtype(_DTYPES[fmt]).name} pixels, got {data.dtype}")
        channels = 1 if data.ndim == 2 else data.shape[2]
        if channels != _CHANNELS[fmt]:
            raise ValueError(f"{fmt.name} needs {_CHANNELS[fmt]} channel(s), got shape {data.shape}")
        pixels = np.array(data if data.ndim == 3 else data[..., None], copy=True, order="C")
        pixels.flags.writeable = False
        self._format, self._pixels = fmt, pixels

    @classmethod
    def create_from_file(cls, file_name: str | os.PathLike) -> Image:
        """Decode an image file (as stored: no EXIF rotation, like MediaPipe).

        Args:
            file_name: the file.

        Returns:
            An SRGB, SRGBA or GRAY8 image.

        Raises:
            ImageError: (a ``ValueError``) the file is missing or not a decodable image.
        """
        image = open_image(file_name)
        if image.mode in ("L", "RGB", "RGBA"):
            converted = image
        elif image.mode in ("LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            converted = image.convert("RGBA")
        elif image.mode in ("1", "I;16", "I;16B", "I;16L", "I"):
            converted = image.convert("L")
        else:
            converted = image.convert("RGB")
        fmt = {"L": ImageFormat.GRAY8, "RGB": ImageFormat.SRGB, "RGBA": ImageFormat.SRGBA}[converted.mode]
        return cls(fmt, np.asarray(converted))

    def numpy_view(self) -> np.ndarray:
        """The pixels as a read-only HxWxC array (copy it to modify).

        Returns:
            A read-only view.
        """
        return self._pixels

    def __getitem__(self, key: tuple[int, ...]) -> Any:
        return self._pixels[key] if len(key) == 3 else self._pixels[(*key, 0)]

    @property
    def width(self) -> int:
        """Width in pixels."""
        return int(self._pixels.shape[1])

    @property
    def height(self) -> int:
        """Height in pixels."""
        return int(self._pixels.shape[0])

    @property
    def channels(self) -> int:
        """Channels per pixel."""
        return int(self._pixels.shape[2])

    @property
    def image_format(self) -> ImageFormat:
        """The pixel layout."""
        return self._format

    def uses_gpu(self) -> bool:
        """Whether the pixels are on a GPU.

        Returns:
            Always False: the pixels are in memory.
        """
        return False

    def is_contiguous(self) -> bool:
        """Whether the pixels are one contiguous block.

        Returns:
            Always True.
        """
        return True

    def is_empty(self) -> bool:
        """Whether the image has no pixels.

        Returns:
            True for an image without pixels.
        """
        return self._pixels.size == 0

    def __repr__(self) -> str:
        return f"Image({self._format.name}, {self.width}x{self.height})"
