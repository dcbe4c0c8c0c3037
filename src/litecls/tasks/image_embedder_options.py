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
    validate_vision_options,
)

if TYPE_CHECKING:
    from litecls.processing.preprocess import Normalization


@dataclass
class ImageEmbedderOptions:
    """Settings of an :class:`~litecls.tasks.ImageEmbedder`.

    Model: ``base_options`` (path, bytes, delegate) or ``model_path`` (a
    .tflite file or a zoo name such as ``"efficientnet_lite0:int8"``, which
    resolves to the zoo's embedding file); exactly one. ``running_mode`` and
    ``result_callback`` (LIVE_STREAM only) as in MediaPipe.
    ``l2_normalize``: divide each vector by its L2 norm (``None``: no).
    ``quantize``: scalar-quantize each vector to int8 (``round(v * 128)``,
    meant for L2-normalised vectors; ``None``: no).
    ``num_threads``, ``mean``, ``std``, ``resize_policy``, ``crop_pct``,
    ``interpolation``, ``normalize_quantized_input``, ``cache_dir``,
    ``image_limits``: as in :class:`litecls.tasks.ImageClassifierOptions`.
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

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every setting.

        Raises:
            ValueError: naming the first setting that cannot work.
        """
        validate_vision_options(self)
        for name in ("l2_normalize", "quantize"):
            if getattr(self, name) not in (None, True, False):
                raise ValueError(f"{name} must be True, False or None, got {getattr(self, name)!r}")
