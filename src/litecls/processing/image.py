"""Image decoding and geometry: from whatever the user has to an RGB array of the model's size.

Policy (documented in the README):

* EXIF orientation is applied, so a phone photo is classified upright.
* Any mode becomes RGB (or L for 1-channel models): palette and RGBA images
  are flattened on white, CMYK converted, 16-bit scaled to 8-bit.
* Large JPEGs are decoded at reduced size with DCT scaling (``Image.draft``),
  never below twice the target size, so a 12-MP photo costs about as much as
  a small one while the final resample stays anti-aliased.
* Resize: the short side goes to ``size / crop_pct`` and the centre
  ``size x size`` is kept (``crop_pct=1`` keeps the whole short side; the
  ``"squash"`` policy resizes to the input size ignoring aspect ratio).
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from litecls.errors import ImageError
from litecls.processing.region import ImageProcessingOptions, apply_region

#: Images above this many pixels are refused before decoding (decompression bombs).
MAX_IMAGE_PIXELS = 100_000_000

ImageInput = str | os.PathLike | bytes | Image.Image | np.ndarray

_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
             "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}


def open_image(source: str | os.PathLike | bytes, draft_size: tuple[int, int] | None = None) -> Image.Image:
    """Decode an image file or bytes into a loaded PIL image.

    ``draft_size`` lets JPEG decoding use DCT scaling down to at least that size.
    Every failure (missing, empty, truncated, not an image, too large) raises
    :class:`ImageError` naming the file and the cause.
    """
    name = "<bytes>" if isinstance(source, (bytes, bytearray)) else str(source)
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise ImageError(f"{name}: empty image data")
        stream: io.BufferedIOBase | io.BytesIO = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.exists():
            raise ImageError(f"{name}: no such file")
        if path.is_dir():
            raise ImageError(f"{name}: is a directory, not an image")
        if path.stat().st_size == 0:
            raise ImageError(f"{name}: empty file")
        stream = path.open("rb")
    try:
        with warnings.catch_warnings():
            # PIL warns from 89.5 MP, under our documented limit: ours is checked right below
            # instead (PIL still raises DecompressionBombError from 179 MP, caught further down).
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(stream)
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ImageError(f"{name}: {width}x{height} pixels is over the limit of "
                                 f"{MAX_IMAGE_PIXELS:,} (possible decompression bomb)")
            if draft_size is not None and image.format == "JPEG":
                image.draft("RGB", draft_size)
            image.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image file (unrecognised format)") from None
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)):,} pixels" if found else "its pixel count"
        raise ImageError(f"{name}: {size} is over the limit of {MAX_IMAGE_PIXELS:,} "
                         f"(possible decompression bomb)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{name}: truncated or corrupt image data ({exc})") from None
    finally:
        if not isinstance(source, (bytes, bytearray)):
            stream.close()
    return image


def to_mode(image: Image.Image, channels: int = 3) -> Image.Image:
    """Apply EXIF orientation and convert to RGB (``channels=3``) or L (``channels=1``)."""
    if image.getexif().get(ExifTags.Base.Orientation, 1) != 1:
        # Only then: exif_transpose copies even an upright image (2 ms for a 2-MP frame).
        image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale (e.g. PNG): scale to 8 bits rather than clip.
        array = np.asarray(image, dtype=np.uint32)
        image = Image.fromarray((array >> 8).clip(0, 255).astype(np.uint8) if array.max() > 255
                                else array.astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    target = "RGB" if channels == 3 else "L"
    return image if image.mode == target else image.convert(target)


def load_image(source: ImageInput, channels: int = 3,
               draft_size: tuple[int, int] | None = None) -> Image.Image:
    """Any supported input (path, bytes, PIL image, HxWx3 / HxW uint8 array) as an upright RGB/L image."""
    if not isinstance(source, np.ndarray) and callable(getattr(source, "numpy_view", None)):
        source = np.asarray(source.numpy_view())  # a MediaPipe (or litecls.compat) Image
    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or source.ndim not in (2, 3) or (
                source.ndim == 3 and source.shape[2] not in (1, 3, 4)):
            raise ImageError(f"array image must be HxW, HxWx3 or HxWx4 uint8, got "
                             f"{source.dtype} {source.shape}")
        image = Image.fromarray(source[..., 0] if source.ndim == 3 and source.shape[2] == 1 else source)
    elif isinstance(source, Image.Image):
        image = source
    elif isinstance(source, (str, os.PathLike, bytes, bytearray)):
        image = open_image(source, draft_size)
    else:
        raise ImageError(f"unsupported image input of type {type(source).__name__}")
    return to_mode(image, channels)


def resize_and_crop(image: Image.Image, size: tuple[int, int], crop_pct: float = 1.0,
                    interpolation: str = "bilinear", policy: str = "crop") -> Image.Image:
    """Resize to ``size`` = (height, width).

    ``policy="crop"``: scale the short side to ``size / crop_pct`` keeping the
    aspect ratio, then cut the centre. ``policy="squash"``: resize straight to
    ``size``.
    """
    height, width = size
    resample = _RESAMPLE[interpolation]
    if policy == "squash":
        return image if image.size == (width, height) else image.resize((width, height), resample)
    if policy != "crop":
        raise ValueError(f"unknown resize policy {policy!r}; use 'crop' or 'squash'")
    if image.size == (width, height):
        return image
    src_w, src_h = image.size
    scale = max(height / crop_pct / src_h, width / crop_pct / src_w)
    new_w, new_h = max(width, round(src_w * scale)), max(height, round(src_h * scale))
    image = image.resize((new_w, new_h), resample, reducing_gap=3.0)
    left, top = (new_w - width) // 2, (new_h - height) // 2
    return image.crop((left, top, left + width, top + height))


def prepare_image(source: ImageInput, size: tuple[int, int], channels: int = 3,
                  crop_pct: float = 1.0, interpolation: str = "bilinear",
                  policy: str = "crop", region: ImageProcessingOptions | None = None) -> np.ndarray:
    """Decode, orient, convert, cut the region and rotate (``region``), resize.

    Returns an HxWxC uint8 array of the model's size; raises
    :class:`ImageError` for an unreadable image and ``ValueError`` for a
    region that does not fit the image.
    """
    height, width = size
    # DCT scaling keeps at least twice the final resolution so the resample still anti-aliases
    # (not with a region: a small region of a large photo needs the full resolution).
    identity = region is None or region.is_identity
    draft = (int(2 * width / crop_pct), int(2 * height / crop_pct)) if identity else None
    image = apply_region(load_image(source, channels, draft), region)
    image = resize_and_crop(image, size, crop_pct, interpolation, policy)
    array = np.asarray(image, dtype=np.uint8)
    return array[..., None] if array.ndim == 2 else array
