"""Region of interest and rotation, applied to a decoded image before it is resized.

The names and rules are MediaPipe Tasks' (``ImageProcessingOptions``,
``RectF``) and the TFLite Task Library's (``BoundingBox`` in pixels)::

    options = ImageProcessingOptions(region_of_interest=RectF(left=0.1, top=0.2, right=0.6, bottom=0.9),
                                     rotation_degrees=90)
    classifier.classify("photo.jpg", options)

The region is cut from the upright image (EXIF orientation already applied)
first, then the cut is rotated by ``rotation_degrees`` clockwise, then it is
resized to the model's input like any image (crop or squash policy).
MediaPipe does the same in one affine warp (OpenCV, bilinear, no
anti-aliasing); litecls cuts and rotates exactly (whole pixels, lossless
transposes) and resamples once, with PIL's anti-aliasing filter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image


@dataclass
class RectF:
    """A rectangle in coordinates normalised to the image's width and height (MediaPipe's ``RectF``).

    The origin is the top-left corner; as a region of interest the values
    must lie in [0, 1] with ``left < right`` and ``top < bottom`` (checked by
    :class:`ImageProcessingOptions`, which raises ``ValueError``). The field
    order (left, top, bottom, right) is MediaPipe's.

    Attributes:
        left: The left edge, as a fraction of the image's width.
        top: The top edge, as a fraction of the image's height.
        bottom: The bottom edge, as a fraction of the image's height.
        right: The right edge, as a fraction of the image's width.
    """

    left: float
    top: float
    bottom: float
    right: float


@dataclass
class BoundingBox:
    """A rectangle in pixels of the upright image (the TFLite Task Library's ``BoundingBox``).

    As a region of interest it must lie inside the image, with a positive width
    and height (checked by :class:`ImageProcessingOptions` and against the image
    when it is used; both raise ``ValueError``).

    Attributes:
        origin_x: The column of its top-left corner.
        origin_y: The row of its top-left corner.
        width: Its width in pixels.
        height: Its height in pixels.
    """

    origin_x: int
    origin_y: int
    width: int
    height: int


@dataclass
class ImageProcessingOptions:
    """What part of an image to classify, and how to turn it (MediaPipe's ``ImageProcessingOptions``).

    The region is cut first, then rotated. The options are checked when made
    (:meth:`validate`).

    Attributes:
        region_of_interest: A :class:`RectF` (normalised) or a :class:`BoundingBox`
            (pixels); ``None`` for the whole image.
        rotation_degrees: Clockwise rotation of the image (or region), a multiple of
            90, negative allowed.

    Raises:
        ValueError: a rotation that is not a multiple of 90, or a region that is not
            a RectF or BoundingBox or lies outside its bounds (see :meth:`validate`).
    """

    region_of_interest: RectF | BoundingBox | None = None
    rotation_degrees: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check the rotation and a normalised region (a pixel box is checked against the image).

        Raises:
            ValueError: a rotation that is not a multiple of 90, or a region
                outside [0, 1] or with ``left >= right`` / ``top >= bottom``.
        """
        check_rotation(self.rotation_degrees)
        roi = self.region_of_interest
        if isinstance(roi, RectF):
            check_rect(roi)
        elif isinstance(roi, BoundingBox):
            check_box(roi)
        elif roi is not None:
            raise ValueError(f"region_of_interest must be a RectF (normalised) or a BoundingBox (pixels), "
                             f"got {type(roi).__name__}")

    @property
    def is_identity(self) -> bool:
        """True when the options change nothing (no region, no rotation)."""
        return self.region_of_interest is None and self.rotation_degrees % 360 == 0


def check_rotation(degrees: object) -> int:
    """``degrees`` as an int, or ``ValueError`` unless it is a whole multiple of 90.

    Args:
        degrees: the clockwise rotation.

    Returns:
        The rotation as an int.

    Raises:
        ValueError: not a number, or not a multiple of 90.
    """
    if isinstance(degrees, bool) or not isinstance(degrees, (int, float)) or not math.isfinite(degrees):
        raise ValueError(f"rotation_degrees must be a multiple of 90, got {degrees!r}")
    if degrees % 90 != 0:
        raise ValueError(f"Expected rotation to be a multiple of 90°, got rotation_degrees={degrees!r}")
    return int(degrees)


def check_rect(rect: RectF) -> None:
    """Raise ``ValueError`` unless ``rect`` is a valid normalised region (MediaPipe's rules and words).

    Args:
        rect: the region.

    Raises:
        ValueError: a value that is not a finite number, outside [0, 1], or
            ``left >= right`` or ``top >= bottom``.
    """
    values = (rect.left, rect.top, rect.right, rect.bottom)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise ValueError(f"Expected RectF values to be finite numbers, got {rect}")
    if rect.left >= rect.right or rect.top >= rect.bottom:
        raise ValueError(f"Expected RectF with left < right and top < bottom, got {rect}")
    if min(values) < 0 or max(values) > 1:
        raise ValueError(f"Expected RectF values to be in [0,1], got {rect}")


def check_box(box: BoundingBox, size: tuple[int, int] | None = None) -> None:
    """Raise ``ValueError`` unless ``box`` is a non-empty pixel region (inside ``size`` = (width, height)).

    Args:
        box: the region in pixels.
        size: the image's ``(width, height)``, when known.

    Raises:
        ValueError: a value that is not an integer, an empty or negative box,
            or one that extends past the image.
    """
    values = (box.origin_x, box.origin_y, box.width, box.height)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"BoundingBox values must be integers (pixels), got {box}")
    if box.origin_x < 0 or box.origin_y < 0 or box.width <= 0 or box.height <= 0:
        raise ValueError(f"BoundingBox must have origin >= 0 and width, height > 0, got {box}")
    if size is not None and (box.origin_x + box.width > size[0] or box.origin_y + box.height > size[1]):
        raise ValueError(f"BoundingBox {box} extends past the {size[0]}x{size[1]} image")


def region_box(roi: RectF | BoundingBox, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The pixel box ``(left, top, right, bottom)`` of a region in an image of ``size`` = (width, height).

    A normalised rectangle's edges are rounded to the nearest pixel, keeping
    at least one pixel each way.

    Args:
        roi: the region.
        size: the image's ``(width, height)``.

    Returns:
        The box in PIL's ``crop`` order.

    Raises:
        ValueError: an invalid region, or a pixel box past the image.
    """
    width, height = size
    if isinstance(roi, BoundingBox):
        check_box(roi, size)
        return roi.origin_x, roi.origin_y, roi.origin_x + roi.width, roi.origin_y + roi.height
    check_rect(roi)
    left, right = round(roi.left * width), round(roi.right * width)
    top, bottom = round(roi.top * height), round(roi.bottom * height)
    left, top = min(left, width - 1), min(top, height - 1)
    return left, top, max(right, left + 1), max(bottom, top + 1)


_TRANSPOSE = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180,
              270: Image.Transpose.ROTATE_90}  # PIL's ROTATE_n turns counter-clockwise


def apply_region(image: Image.Image, options: ImageProcessingOptions | None) -> Image.Image:
    """Cut the region of interest out of ``image``, then rotate it clockwise (both exact, no resampling).

    Args:
        image: a decoded, upright PIL image.
        options: the region and rotation; ``None`` returns ``image``.

    Returns:
        The cut and rotated image.

    Raises:
        ValueError: invalid options, or a pixel box past the image.
    """
    if options is None or options.is_identity:
        return image
    if options.region_of_interest is not None:
        box = region_box(options.region_of_interest, image.size)
        if box != (0, 0, *image.size):
            image = image.crop(box)
    turn = check_rotation(options.rotation_degrees) % 360
    return image.transpose(_TRANSPOSE[turn]) if turn else image
