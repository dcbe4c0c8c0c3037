"""``mediapipe.tasks.python.vision``: image classifier and embedder, MediaPipe's options and semantics.

:class:`ImageClassifier` is litecls's task set up as MediaPipe's:
``max_results=None`` gives every category, scores are the model's own
(dequantized; no softmax, no renormalisation), the whole image (or region,
turned) is warped onto the input as MediaPipe's OpenCV step does (bilinear,
no anti-aliasing), a uint8 input gets raw pixels (the metadata's mean/std
apply to float inputs only), ``display_names_locale=None`` means "en", an
allowlist or denylist name that matches no label is ignored, and
``score_threshold`` may be any number (the metadata's threshold when unset).

:class:`ImageEmbedder` likewise: squash, raw pixels for a uint8 input, no
L2 normalisation or quantization unless asked, float vectors as float64 and
quantized ones as uint8 bytes (MediaPipe's dtypes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from litecls.compat.mediapipe.warp import MediaPipeInput
from litecls.processing.region import ImageProcessingOptions
from litecls.tasks.classification_result import ClassificationResult
from litecls.tasks.embedding_result import EmbeddingResult
from litecls.tasks.image_classifier import ImageClassifier as _Classifier
from litecls.tasks.image_classifier_options import BaseOptions, RunningMode
from litecls.tasks.image_classifier_options import ImageClassifierOptions as _NativeOptions
from litecls.tasks.image_embedder import ImageEmbedder as _Embedder
from litecls.tasks.image_embedder_options import ImageEmbedderOptions as _NativeEmbedderOptions

#: How MediaPipe brings any image to the input: the whole image squashed, bilinear, raw pixels for uint8.
_MEDIAPIPE_RESIZE = {"normalize_quantized_input": False, "resize_policy": "squash", "crop_pct": 1.0,
                     "interpolation": "bilinear"}

ImageClassifierResult = ClassificationResult

Task = TypeVar("Task", bound="_MediaPipeTask")


class _MediaPipeTask(MediaPipeInput):
    """Mixin for a litecls task made from this module's options (MediaPipe's) and fed MediaPipe's pixels."""

    #: This module's options class of the task; its ``to_litecls()`` gives the native options.
    _mediapipe_options: ClassVar[type]

    @classmethod
    def create_from_model_path(cls: type[Task], model_path: str) -> Task:
        """A task of this class in IMAGE mode with MediaPipe's default options.

        Args:
            model_path: the .tflite file.

        Returns:
            The task (an ImageClassifier from ``ImageClassifier``, an ImageEmbedder from ``ImageEmbedder``).

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is not a model the task can run.
        """
        return cls.create_from_options(cls._mediapipe_options(BaseOptions(model_asset_path=model_path)))

    @classmethod
    def create_from_options(cls: type[Task], options: Any) -> Task:
        """A task of this class for MediaPipe-style ``options`` (litecls's own options are taken as they are).

        Args:
            options: this module's options of the task (or :mod:`litecls.tasks`' own).

        Returns:
            The task.

        Raises:
            FileNotFoundError: no such model file.
            ValueError: an invalid option or model.
            RuntimeError: a delegate that is not available (GPU).
        """
        native = options.to_litecls() if isinstance(options, cls._mediapipe_options) else options
        return super().create_from_options(native)  # type: ignore[misc]


@dataclass
class ImageClassifierOptions:
    """MediaPipe's ``ImageClassifierOptions``: same fields, order and defaults.

    Checked when the classifier is created (:meth:`to_litecls`), as in MediaPipe.

    Attributes:
        base_options: The model (path or bytes) and delegate.
        running_mode: IMAGE, VIDEO or LIVE_STREAM.
        display_names_locale: The locale of the metadata's display names; ``None`` for "en".
        max_results: Categories per result; ``None`` (or -1) for all.
        score_threshold: Drop categories scoring under it (any number); ``None`` for the
            metadata's threshold, else none.
        category_allowlist: Category names to keep; names that match no label are ignored.
        category_denylist: Category names to drop; likewise.
        result_callback: ``callback(result, image, timestamp_ms)``; LIVE_STREAM only.
    """

    base_options: BaseOptions
    running_mode: RunningMode = RunningMode.IMAGE
    display_names_locale: str | None = None
    max_results: int | None = None
    score_threshold: float | None = None
    category_allowlist: list[str] | None = None
    category_denylist: list[str] | None = None
    result_callback: Callable[[ClassificationResult, Any, int], None] | None = None

    def to_litecls(self) -> _NativeOptions:
        """The :class:`litecls.tasks.ImageClassifierOptions` with MediaPipe's semantics.

        Returns:
            The native options.

        Raises:
            ValueError: an invalid setting (MediaPipe's words where it has them).
        """
        if self.max_results == 0:
            raise ValueError("Invalid `max_results` option: value must be != 0.")
        if self.category_allowlist and self.category_denylist:
            raise ValueError("`category_allowlist` and `category_denylist` are mutually exclusive options.")
        return _NativeOptions(
            base_options=self.base_options, running_mode=self.running_mode,
            display_names_locale=self.display_names_locale,
            max_results=-1 if self.max_results is None or self.max_results < 0 else self.max_results,
            score_threshold=self.score_threshold, category_allowlist=self.category_allowlist,
            category_denylist=self.category_denylist, result_callback=self.result_callback,
            raw_scores=True, ambiguity_min_score=0.0, ambiguity_margin=0.0, **_MEDIAPIPE_RESIZE)


class ImageClassifier(_MediaPipeTask, _Classifier):
    """MediaPipe's ``ImageClassifier``: ``classify``, ``classify_for_video``, ``classify_async``, ``close``.

    Create with :meth:`create_from_model_path` or :meth:`create_from_options`
    (taking this module's :class:`ImageClassifierOptions`). A MediaPipe ``Image`` (or uint8
    array) reaches the model as MediaPipe's own pixels: region, rotation and squash in one
    bilinear warp (:mod:`litecls.compat.mediapipe.warp`).
    """

    _strict_category_names = False
    _mediapipe_options: ClassVar[type] = ImageClassifierOptions
    #: As in MediaPipe's guide (``mp.tasks.vision.ImageClassifier.ImageClassifierResult``).
    ImageClassifierResult = ClassificationResult


ImageEmbedderResult = EmbeddingResult


@dataclass
class ImageEmbedderOptions:
    """MediaPipe's ``ImageEmbedderOptions``: same fields, order and defaults.

    Attributes:
        base_options: As in :class:`ImageClassifierOptions`.
        running_mode: Likewise.
        l2_normalize: Divide each vector by its L2 norm; ``None`` means no.
        quantize: Scalar-quantize each vector to uint8 bytes; ``None`` means no.
        result_callback: Likewise.

    Checked when the embedder is created (:meth:`to_litecls`).
    """

    base_options: BaseOptions
    running_mode: RunningMode = RunningMode.IMAGE
    l2_normalize: bool | None = None
    quantize: bool | None = None
    result_callback: Callable[[EmbeddingResult, Any, int], None] | None = None

    def to_litecls(self) -> _NativeEmbedderOptions:
        """The :class:`litecls.tasks.ImageEmbedderOptions` with MediaPipe's preprocessing.

        Returns:
            The native options.

        Raises:
            ValueError: an invalid setting.
        """
        return _NativeEmbedderOptions(
            base_options=self.base_options, running_mode=self.running_mode, l2_normalize=self.l2_normalize,
            quantize=self.quantize, result_callback=self.result_callback, **_MEDIAPIPE_RESIZE)


class ImageEmbedder(_MediaPipeTask, _Embedder):
    """MediaPipe's ``ImageEmbedder``: ``embed``, ``embed_for_video``, ``embed_async``, ``cosine_similarity``.

    Vectors come as MediaPipe gives them: float64, or uint8 bytes when quantized. A MediaPipe
    ``Image`` reaches the model as MediaPipe's own pixels (:mod:`litecls.compat.mediapipe.warp`).
    """

    _float_dtype: ClassVar[type] = np.float64
    _quantized_dtype: ClassVar[type] = np.uint8
    _mediapipe_options: ClassVar[type] = ImageEmbedderOptions
    ImageEmbedderResult = EmbeddingResult


__all__ = ["BaseOptions", "ImageClassifier", "ImageClassifierOptions", "ImageClassifierResult",
           "ImageEmbedder", "ImageEmbedderOptions", "ImageEmbedderResult", "ImageProcessingOptions",
           "RunningMode"]
