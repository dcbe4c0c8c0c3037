"""Options of :class:`litecls.tasks.ImageEmbedder`: MediaPipe's ``ImageEmbedderOptions`` plus preprocessing.

The first five fields are MediaPipe's, in its order and with its defaults
(no L2 normalisation, no quantization). litecls adds the model as a path or
zoo name (``model_path``) and the preprocessing settings the classifier has;
the preprocessing defaults are litecls's (the model's centre crop), and
:mod:`litecls.compat.mediapipe` sets MediaPipe's (squash).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from litecls.processing.image import ImageLimits
from litecls.tasks.image_classifier_options import (
    BaseOptions,
    ResultCallback,
    RunningMode,
    VisionTaskOptions,
)

if TYPE_CHECKING:
    from litecls.processing.preprocess import Normalization


@dataclass
class ImageEmbedderOptions(VisionTaskOptions):
    """Settings of an :class:`~litecls.tasks.ImageEmbedder`.

    The model is ``base_options`` or ``model_path``, exactly one. Every setting
    is checked when the options are made (:meth:`validate`).

    Attributes:
        base_options: MediaPipe's model path or bytes, and the delegate.
        running_mode: IMAGE, VIDEO or LIVE_STREAM (as in MediaPipe).
        l2_normalize: Divide each vector by its L2 norm (``None``: no).
        quantize: Scalar-quantize each vector to int8 (``round(v * 128)``, meant for
            L2-normalised vectors; ``None``: no).
        result_callback: ``callback(result, image, timestamp_ms)``; required in
            LIVE_STREAM mode, refused in the others.
        model_path: A .tflite file or a zoo name such as ``"efficientnet_lite0:int8"``,
            which resolves to the zoo's embedding file.
        num_threads: As in :class:`litecls.tasks.ImageClassifierOptions`.
        mean: Likewise.
        std: Likewise.
        resize_policy: Likewise.
        crop_pct: Likewise.
        interpolation: Likewise.
        normalize_quantized_input: Likewise.
        cache_dir: Likewise.
        image_limits: Likewise.

    Raises:
        ValueError: a setting that cannot work (see :meth:`validate`).
    """

    base_options: BaseOptions | None = None
    running_mode: RunningMode = RunningMode.IMAGE
    l2_normalize: bool | None = None
    quantize: bool | None = None
    result_callback: ResultCallback | None = None
    model_path: str | os.PathLike | None = None
    num_threads: int | None = None
    mean: Normalization | None = None
    std: Normalization | None = None
    resize_policy: str | None = None
    crop_pct: float | None = None
    interpolation: str | None = None
    normalize_quantized_input: bool = True
    cache_dir: str | os.PathLike | None = None
    image_limits: ImageLimits | None = None

    def _validate_task(self) -> None:
        for name in ("l2_normalize", "quantize"):
            if getattr(self, name) not in (None, True, False):
                raise ValueError(f"{name} must be True, False or None, got {getattr(self, name)!r}")
