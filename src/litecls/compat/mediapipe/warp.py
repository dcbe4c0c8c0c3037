"""MediaPipe's image-to-tensor step in numpy: its region, rotation and resize as one bilinear warp.

MediaPipe turns ``ImageProcessingOptions`` into a rotated rectangle in
pixels and warps that rectangle straight onto the model's input with
OpenCV (``warpPerspective``, bilinear, fixed point: source positions in
1/32 pixel steps, weights in 1/32768, no anti-aliasing). litecls's own
path cuts whole pixels and resizes once with an anti-aliased filter, which
is the better picture but not the same pixels; the compatibility module
uses this warp so that code brought over from MediaPipe sees MediaPipe's
input (and so, on turned photos where the model is fragile, its top-1).
"""

from __future__ import annotations

import math

import numpy as np

#: Source positions are rounded to 1/_STEPS of a pixel (OpenCV's INTER_TAB_SIZE).
_STEPS = 32


def region_corners(width: int, height: int, rect: tuple[float, float, float, float] | None,
                   rotation_degrees: int) -> np.ndarray:
    """The source points that land on the output's top-left, top-right and bottom-left corners.

    Args:
        width: The image's width in pixels.
        height: The image's height in pixels.
        rect: The normalised region ``(left, top, right, bottom)``, or ``None`` for the whole image.
        rotation_degrees: A multiple of 90; positive turns the picture clockwise.

    Returns:
        A 3x2 float64 array of ``(x, y)`` source positions (pixel centres at integers).
    """
    left, top, right, bottom = rect or (0.0, 0.0, 1.0, 1.0)
    norm_w, norm_h = right - left, bottom - top
    if rotation_degrees % 180:  # MediaPipe swaps the rectangle's sides for a quarter turn
        norm_w, norm_h = norm_h * height / width, norm_w * width / height
    angle = -rotation_degrees * math.pi / 180.0
    center_x, center_y = (left + right) / 2 * width, (top + bottom) / 2 * height
    box_w, box_h = norm_w * width, norm_h * height
    # OpenCV's RotatedRect::points: bottom-left, top-left, top-right, bottom-right.
    b = np.float32(math.cos(angle)) * np.float32(0.5)
    a = np.float32(math.sin(angle)) * np.float32(0.5)
    bottom_left = (center_x - a * box_h - b * box_w, center_y + b * box_h - a * box_w)
    top_left = (center_x + a * box_h - b * box_w, center_y - b * box_h - a * box_w)
    top_right = (2 * center_x - bottom_left[0], 2 * center_y - bottom_left[1])
    return np.array([top_left, top_right, bottom_left], dtype=np.float64)


def warp_to_input(pixels: np.ndarray, size: tuple[int, int],
                  rect: tuple[float, float, float, float] | None = None,
                  rotation_degrees: int = 0) -> np.ndarray:
    """MediaPipe's model input for ``pixels``: the region, turned, squashed to ``size``.

    Args:
        pixels: An HxWxC uint8 image (C = 3; a fourth, alpha channel is dropped after the warp,
            as MediaPipe does).
        size: The model input's ``(width, height)``.
        rect: The normalised region ``(left, top, right, bottom)``, or ``None`` for the whole image.
        rotation_degrees: A multiple of 90 (validated by the caller).

    Returns:
        A ``(height, width, 3)`` uint8 array.
    """
    out_w, out_h = size
    height, width = pixels.shape[:2]
    top_left, top_right, bottom_left = region_corners(width, height, rect, rotation_degrees)
    xs = np.arange(out_w, dtype=np.float64) / out_w
    ys = np.arange(out_h, dtype=np.float64) / out_h
    across, down = top_right - top_left, bottom_left - top_left
    src_x = top_left[0] + xs[None, :] * across[0] + ys[:, None] * down[0]
    src_y = top_left[1] + xs[None, :] * across[1] + ys[:, None] * down[1]
    fixed_x = np.rint(src_x * _STEPS).astype(np.int64)
    fixed_y = np.rint(src_y * _STEPS).astype(np.int64)
    x0, fx = fixed_x >> 5, fixed_x & (_STEPS - 1)
    y0, fy = fixed_y >> 5, fixed_y & (_STEPS - 1)
    rgb = pixels[..., :3].astype(np.int64)
    total = np.zeros((out_h, out_w, 3), dtype=np.int64)
    for dy, wy in ((0, _STEPS - fy), (1, fy)):
        for dx, wx in ((0, _STEPS - fx), (1, fx)):
            # MediaPipe's classifier warps with a replicated border: taps past an edge repeat it.
            taps = rgb[np.clip(y0 + dy, 0, height - 1), np.clip(x0 + dx, 0, width - 1)]
            total += taps * (wx * wy * _STEPS)[..., None]
    return np.clip((total + (1 << 14)) >> 15, 0, 255).astype(np.uint8)


def _pixels(image: object) -> np.ndarray | None:
    """The uint8 RGB(A) pixels MediaPipe would warp, or ``None`` for inputs it has no meaning for."""
    from litecls.tasks.model_source import as_input

    image = as_input(image)  # a MediaPipe-style Image as its array
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 \
            and image.shape[2] in (3, 4):
        return image
    return None


def _normalised(roi: object, width: int, height: int) -> tuple[float, float, float, float] | None:
    """A region as MediaPipe's normalised ``(left, top, right, bottom)`` (a pixel box is converted)."""
    from litecls.processing.region import BoundingBox, check_box, check_rect

    if roi is None:
        return None
    if isinstance(roi, BoundingBox):
        check_box(roi, (width, height))
        return (roi.origin_x / width, roi.origin_y / height,
                (roi.origin_x + roi.width) / width, (roi.origin_y + roi.height) / height)
    check_rect(roi)
    return roi.left, roi.top, roi.right, roi.bottom


class MediaPipeInput:
    """Mixin for a litecls task: feed the model MediaPipe's pixels (:func:`warp_to_input`).

    Applies to MediaPipe ``Image`` objects and HxWx3 / HxWx4 uint8 arrays fed to
    a three-channel model; anything else (paths, bytes, PIL images) takes the
    task's own preprocessing.
    """

    def preprocess(self, image: object, image_processing_options: object = None) -> np.ndarray:
        """The model's input tensor for ``image``, made as MediaPipe makes it.

        Args:
            image: A MediaPipe-style ``Image``, a uint8 array, or any input the litecls task takes.
            image_processing_options: Region of interest and rotation.

        Returns:
            The ``[1, H, W, C]`` tensor.

        Raises:
            ValueError: an invalid region or rotation (MediaPipe's checks), or an image the task
                cannot read (``litecls.errors.ImageError``).
        """
        from litecls.processing.region import check_rotation

        pixels = _pixels(image)
        spec = self.signature.input  # type: ignore[attr-defined]
        if pixels is None or spec.channels != 3:
            return super().preprocess(image, image_processing_options)  # type: ignore[misc]
        options = image_processing_options
        degrees = check_rotation(options.rotation_degrees) if options is not None else 0
        roi = options.region_of_interest if options is not None else None
        rect = _normalised(roi, pixels.shape[1], pixels.shape[0])
        warped = warp_to_input(pixels, (spec.width, spec.height), rect, degrees)
        return super().preprocess(warped, None)  # type: ignore[misc]
