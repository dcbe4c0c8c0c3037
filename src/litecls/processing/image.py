"""Image decoding and geometry: from whatever the user has to an RGB array of the model's size.

Policy (documented in the README):

* EXIF orientation is applied, so a phone photo is classified upright.
* Any mode becomes RGB (or L for 1-channel models): palette and RGBA images
  are flattened on white, CMYK converted, 16-bit scaled to 8-bit.
* Large JPEGs are decoded at reduced size with DCT scaling (``Image.draft``),
  never below twice the target size, so a 12-MP photo costs about as much as
  a small one while the final resample stays anti-aliased.
* Other formats are reduced (``Image.reduce``, box averaging) right after
  decoding by the same rule, before orientation and mode conversion, so
  those run on the small image.
* Resize: the short side goes to ``size / crop_pct`` and the centre
  ``size x size`` is kept (``crop_pct=1`` keeps the whole short side; the
  ``"squash"`` policy resizes to the input size ignoring aspect ratio). When
  the discarded part is large, only the kept region is resampled.
* A memory budget (:class:`ImageLimits`, like ImageMagick's resource
  policy: width, height, area, aspect ratio, memory) is checked against the
  header before any pixel is decoded, so a tiny file claiming a huge image
  is refused instead of allocating gigabytes.
* Whatever goes wrong with one image (Pillow raises ``OSError``,
  ``SyntaxError``, ``struct.error``, ``NotImplementedError``, ``MemoryError``
  and more for damaged files) becomes an :class:`ImageError` naming the image,
  the step and the cause.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from litecls.errors import ImageError
from litecls.processing.region import ImageProcessingOptions, apply_region

#: Images above this many pixels are refused before decoding (decompression bombs).
MAX_IMAGE_PIXELS = 100_000_000

#: Decoded images above this many pixels are reduced before orientation and conversion (smaller
#: ones cost little either way, and keep exactly the pixels litecls always produced).
REDUCE_ABOVE = 4_000_000

ImageInput = str | os.PathLike | bytes | Image.Image | np.ndarray

_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
             "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}

#: Peak bytes per pixel from decoding to the reduced image, by mode: PIL's storage (RGB takes 4
#: bytes) plus the full-size copies on the way (a palette image becomes RGB before it can be
#: reduced; ``Image.reduce`` premultiplies alpha in a copy; 16-bit goes through numpy). Others: 4.
_WORK_BYTES = {"1": 2, "L": 1, "P": 5, "PA": 10, "RGBA": 8, "LA": 8, "La": 4, "RGBa": 4,
               "I;16": 7, "I;16B": 7, "I;16L": 7, "I;16N": 7}
#: EXIF orientation -> the transpose that makes the image upright (as ImageOps.exif_transpose).
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


@dataclass(frozen=True)
class ImageLimits:
    """The resources one image may take, checked from its header before decoding.

    Like ImageMagick's resource policy: ``max_width`` and ``max_height`` in
    pixels, ``max_pixels`` (area), ``max_aspect_ratio`` (long side over short
    side; classifying a 1 x 65500 strip means nothing) and ``max_memory``,
    the bytes the decoded pixels may take (at the size JPEG DCT scaling
    decodes to, plus a full-size conversion for palette, 1-bit and 16-bit
    images). The defaults keep one image under about 0.6 GB of memory and
    2 s of CPU on a current core; ``ImageLimits(max_pixels=...)`` and so on
    change them (pass to :func:`prepare_image`).
    """

    max_width: int = 30_000
    max_height: int = 30_000
    max_pixels: int = MAX_IMAGE_PIXELS
    max_aspect_ratio: float = 50.0
    max_memory: int = 512 * 2**20

    def __post_init__(self) -> None:
        for field in ("max_width", "max_height", "max_pixels", "max_aspect_ratio", "max_memory"):
            value = getattr(self, field)
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"ImageLimits.{field} must be a positive number, got {value!r}")
        if self.max_aspect_ratio < 1:
            raise ValueError(f"ImageLimits.max_aspect_ratio must be at least 1, got {self.max_aspect_ratio}")

    def check_size(self, name: str, width: int, height: int) -> None:
        """Raise :class:`ImageError` if a ``width`` x ``height`` image is over a limit."""
        if width < 1 or height < 1:
            raise ImageError(f"{name}: the image header says {width}x{height} pixels (no pixels)")
        if width > self.max_width or height > self.max_height:
            raise ImageError(f"{name}: {width}x{height} pixels is over the size limit of "
                             f"{self.max_width}x{self.max_height} (ImageLimits.max_width/max_height)")
        if width * height > self.max_pixels:
            raise ImageError(f"{name}: {width}x{height} pixels is over the limit of "
                             f"{self.max_pixels:,} pixels (possible decompression bomb)")
        ratio = max(width, height) / min(width, height)
        if ratio > self.max_aspect_ratio:
            raise ImageError(f"{name}: {width}x{height} pixels has an aspect ratio of {ratio:,.0f}:1, "
                             f"over the limit of {self.max_aspect_ratio:g}:1 (ImageLimits.max_aspect_ratio)")

    def check_memory(self, name: str, width: int, height: int, mode: str) -> None:
        """Raise :class:`ImageError` if decoding ``width`` x ``height`` pixels of ``mode`` is over budget."""
        needed = width * height * _WORK_BYTES.get(mode, 4)
        if needed > self.max_memory:
            raise ImageError(f"{name}: decoding {width}x{height} {mode} pixels would take "
                             f"{needed / 2**20:,.0f} MiB, over the limit of "
                             f"{self.max_memory / 2**20:,.0f} MiB (ImageLimits.max_memory)")


DEFAULT_LIMITS = ImageLimits()


def _source_name(source: object) -> str:
    if isinstance(source, (bytes, bytearray)):
        return "<bytes>"
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source) if isinstance(os.fspath(source), str) else repr(os.fspath(source))
    if isinstance(source, Image.Image):
        return "<PIL image>"
    if isinstance(source, np.ndarray):
        return "<array>"
    return f"<{type(source).__name__}>"


def image_error(source: object, exc: BaseException, step: str = "decoding") -> ImageError:
    """An :class:`ImageError` naming ``source``, the ``step`` and the cause ``exc``, on one line.

    For whatever Pillow or numpy raise on a damaged image: ``OSError``,
    ``SyntaxError`` and ``struct.error`` (corrupt EXIF), ``NotImplementedError``,
    ``MemoryError``, ``RuntimeError`` (AVIF), ``ValueError`` and the rest.
    """
    name = _source_name(source)
    detail = " ".join(str(exc).split())[:300] or "no details"
    kind = type(exc).__name__
    if isinstance(exc, MemoryError):
        return ImageError(f"{name}: out of memory while {step} the image ({detail})")
    if _is_read_error(exc):
        return ImageError(f"{name}: cannot read image: {exc.strerror}")
    return ImageError(f"{name}: corrupt or unsupported image data while {step} ({kind}: {detail})")


def _is_read_error(exc: BaseException) -> bool:
    """An OSError about the file itself (permissions, I/O), not Pillow seeking in corrupt data."""
    import errno

    return isinstance(exc, OSError) and bool(exc.strerror) and (
        isinstance(exc, (PermissionError, FileNotFoundError, IsADirectoryError, NotADirectoryError))
        or exc.errno in (errno.EIO, errno.ENXIO, errno.ESTALE))


def open_image(source: str | os.PathLike | bytes, draft_size: tuple[int, int] | None = None,
               limits: ImageLimits | None = None) -> Image.Image:
    """Decode an image file or bytes into a loaded PIL image.

    ``draft_size`` lets JPEG decoding use DCT scaling down to at least that
    size. ``limits`` (default :data:`DEFAULT_LIMITS`) are checked against the
    header before decoding. Every failure (missing, empty, a directory,
    truncated, not an image, over a limit, corrupt in any way) raises
    :class:`ImageError` naming the file and the cause.
    """
    limits = limits or DEFAULT_LIMITS
    name = _source_name(source)
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise ImageError(f"{name}: empty image data")
        stream: io.BufferedIOBase | io.BytesIO = io.BytesIO(source)
    else:
        path = Path(source)
        try:
            if not path.exists():
                raise ImageError(f"{name}: no such file")
            if path.is_dir():
                raise ImageError(f"{name}: is a directory, not an image")
            if not path.is_file():
                raise ImageError(f"{name}: not a regular file (a device, pipe or socket)")
            if path.stat().st_size == 0:
                raise ImageError(f"{name}: empty file")
            stream = path.open("rb")
        except OSError as exc:
            raise image_error(source, exc, "opening") from None
    try:
        with warnings.catch_warnings():
            # PIL warns from 89.5 MP, under our documented limit: ours is checked right below
            # instead (PIL still raises DecompressionBombError from 179 MP, caught further down).
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(stream)
            width, height = image.size
            limits.check_size(name, width, height)
            if draft_size is not None and image.format == "JPEG":
                image.draft("RGB", draft_size)
            limits.check_memory(name, *image.size, image.mode)
            image.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image file (unrecognised format)") from None
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)):,} pixels" if found else "its pixel count"
        raise ImageError(f"{name}: {size} is over the limit of {limits.max_pixels:,} "
                         f"(possible decompression bomb)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        if _is_read_error(exc):
            raise image_error(source, exc, "reading") from None
        detail = " ".join(str(exc).split())[:300]
        raise ImageError(f"{name}: truncated or corrupt image data ({detail})") from None
    except Exception as exc:  # struct.error, NotImplementedError, MemoryError, RuntimeError, ...
        raise image_error(source, exc, "decoding") from None
    finally:
        if not isinstance(source, (bytes, bytearray)):
            stream.close()
    return image


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1 to 8; 1 when absent or out of range)."""
    value = image.getexif().get(ExifTags.Base.Orientation, 1)
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


def reduce_for(image: Image.Image, min_size: tuple[int, int], owned: bool = False) -> Image.Image:
    """Shrink an image of over :data:`REDUCE_ABOVE` pixels by an integer factor (box averaging),
    keeping both sides >= ``max(min_size)``.

    The non-JPEG counterpart of JPEG's DCT scaling; the same factor on both
    axes, so it commutes with EXIF orientation. Palette, 1-bit and 16-bit
    images are converted first (``Image.reduce`` cannot average them); a
    palette image's transparency is flattened on white in its palette, and
    ``owned=True`` lets that edit the image in place instead of a copy.
    """
    factor = min(image.size) // max(max(min_size), 1)
    if factor < 2 or image.width * image.height <= REDUCE_ABOVE:
        return image
    if image.mode.startswith("I;16"):
        image = _sixteen_to_eight(image)
    elif image.mode == "P":
        image = _palette_on_white(image, owned)
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode == "PA":
        image = image.convert("RGBA")
    return image.reduce(factor)


def _palette_on_white(image: Image.Image, owned: bool) -> Image.Image:
    """A palette image as RGB, transparent entries blended on white (as :func:`to_mode` flattens)."""
    lut = Image.new("P", (256, 1))
    lut.putdata(list(range(256)))
    mode = image.palette.mode if image.palette is not None else "RGB"
    mode = mode if mode in ("RGB", "RGBA") else "RGB"
    palette = image.getpalette(mode)
    if palette:
        lut.putpalette(palette, mode)
    if "transparency" in image.info:
        lut.info["transparency"] = image.info["transparency"]
    rgba = np.asarray(lut.convert("RGBA"), dtype=np.float32)[0]
    alpha = rgba[:, 3:] / 255.0
    rgb = np.rint(rgba[:, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    flat = image if owned else image.copy()
    flat.info.pop("transparency", None)
    flat.putpalette(rgb.tobytes(), "RGB")
    return flat.convert("RGB")


def _sixteen_to_eight(image: Image.Image) -> Image.Image:
    """16-bit (or 32-bit integer) greyscale scaled to 8 bits rather than clipped."""
    array = np.asarray(image)
    if array.dtype.kind == "i":
        array = array.clip(0, None)
    if array.size and int(array.max()) > 255:
        array = array >> 8
    return Image.fromarray(array.clip(0, 255).astype(np.uint8))


def to_mode(image: Image.Image, channels: int = 3, reduce_to: tuple[int, int] | None = None,
            owned: bool = False) -> Image.Image:
    """Reduce (``reduce_to``: see :func:`reduce_for`), apply EXIF orientation, convert to RGB or L.

    ``channels=3`` gives RGB, ``channels=1`` gives L. Raises whatever PIL raises
    for damaged data (corrupt EXIF raises ``SyntaxError`` or ``struct.error``);
    :func:`load_image` turns it into an :class:`ImageError`.
    """
    orientation = _orientation(image)
    if reduce_to is not None:
        image = reduce_for(image, reduce_to, owned)
    if orientation != 1:
        # Only then: a transpose copies even an upright image (2 ms for a 2-MP frame).
        image = image.transpose(_TRANSPOSE[orientation])
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        image = _sixteen_to_eight(image)
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    target = "RGB" if channels == 3 else "L"
    return image if image.mode == target else image.convert(target)


def load_image(source: ImageInput, channels: int = 3, draft_size: tuple[int, int] | None = None,
               limits: ImageLimits | None = None) -> Image.Image:
    """Any supported input (path, bytes, PIL image, HxWx3 / HxW uint8 array) as an upright RGB/L image.

    ``draft_size``: decode (and reduce) no smaller than this, to save memory
    and time. Raises :class:`ImageError` naming the input and the cause.
    """
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
        image = open_image(source, draft_size, limits)
    else:
        raise ImageError(f"unsupported image input of type {type(source).__name__}")
    try:
        return to_mode(image, channels, draft_size, owned=not isinstance(source, Image.Image))
    except ImageError:
        raise
    except Exception as exc:
        raise image_error(source, exc, "orienting and converting") from None


def resize_and_crop(image: Image.Image, size: tuple[int, int], crop_pct: float = 1.0,
                    interpolation: str = "bilinear", policy: str = "crop") -> Image.Image:
    """Resize to ``size`` = (height, width).

    ``policy="crop"``: scale the short side to ``size / crop_pct`` keeping the
    aspect ratio, then cut the centre. ``policy="squash"``: resize straight to
    ``size``. Only the kept region is resampled (PIL's ``box``): the same
    filter taps as scaling the whole image and cutting it, without the
    intermediate image (equal up to the rounding of the filter weights).
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
    left, top = (new_w - width) // 2, (new_h - height) // 2
    box = (left * src_w / new_w, top * src_h / new_h,
           (left + width) * src_w / new_w, (top + height) * src_h / new_h)
    return image.resize((width, height), resample, box=box, reducing_gap=3.0)


def prepare_image(source: ImageInput, size: tuple[int, int], channels: int = 3,
                  crop_pct: float = 1.0, interpolation: str = "bilinear",
                  policy: str = "crop", limits: ImageLimits | None = None,
                  region: ImageProcessingOptions | None = None) -> np.ndarray:
    """Decode, orient, convert, cut the region and rotate (``region``), resize.

    Returns an HxWxC uint8 array of the model's size. ``limits``: the memory
    budget (default :data:`DEFAULT_LIMITS`). Raises :class:`ImageError` naming
    the image for any failure to read it, and ``ValueError`` for a region that
    does not fit the image.
    """
    height, width = size
    # DCT scaling keeps at least twice the final resolution so the resample still anti-aliases
    # (not with a region: a small region of a large photo needs the full resolution).
    identity = region is None or region.is_identity
    draft = (int(2 * width / crop_pct), int(2 * height / crop_pct)) if identity else None
    image = apply_region(load_image(source, channels, draft, limits), region)
    try:
        image = resize_and_crop(image, size, crop_pct, interpolation, policy)
        array = np.asarray(image, dtype=np.uint8)
    except ValueError as exc:
        if "resize policy" in str(exc):
            raise
        raise image_error(source, exc, "resizing") from None
    except Exception as exc:
        raise image_error(source, exc, "resizing") from None
    return array[..., None] if array.ndim == 2 else array
