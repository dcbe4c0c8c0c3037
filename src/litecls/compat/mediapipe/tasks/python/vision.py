"""``mediapipe.tasks.python.vision``: image classifier and embedder, MediaPipe's options and semantics.

:class:`ImageClassifier` is litecls's task set up as MediaPipe's:
``max_results=None`` gives every category, scores are the model's own
(dequantized; no softmax, no renormalisation), the whole image is squashed
to the input size (bilinear), a uint8 input gets raw pixels (the metadata's
mean/std apply to float inputs only), ``display_names_locale=None`` means "en", an
allowlist or denylist name that matches no label is ignored, and
``score_threshold`` may be any number (the metadata's threshold when unset).

:class:`ImageEmbedder` likewise: squash, raw pixels for a uint8 input, no
L2 normalisation or quantization unless asked, float vectors as float64 and
quantized ones as uint8 bytes (MediaPipe's dtypes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

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


@dataclass
class ImageClassifierOptions:
    """MediaPipe's ``ImageClassifierOptions``: same fields, order and defaults.

    ``base_options``: the model (path or bytes) and delegate. ``running_mode``:
    IMAGE, VIDEO or LIVE_STREAM. ``max_results``: ``None`` (or -1) for all.
    ``score_threshold``: ``None`` for the metadata's (else none).
    ``result_callback(result, image, timestamp_ms)``: LIVE_STREAM only.
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


class ImageClassifier(_Classifier):
    """MediaPipe's ``ImageClassifier``: ``classify``, ``classify_for_video``, ``classify_async``, ``close``.

    Create with :meth:`create_from_model_path` or :meth:`create_from_options`
    (taking this module's :class:`ImageClassifierOptions`).
    """

    _strict_category_names = False
    #: As in MediaPipe's guide (``mp.tasks.vision.ImageClassifier.ImageClassifierResult``).
    ImageClassifierResult = ClassificationResult

    @classmethod
    def create_from_model_path(cls, model_path: str) -> ImageClassifier:  # type: ignore[override]
        """An IMAGE-mode classifier with MediaPipe's default options.

        Args:
            model_path: the .tflite file.

        Returns:
            The classifier.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is not a usable classifier.
        """
        return cls.create_from_options(ImageClassifierOptions(BaseOptions(model_asset_path=model_path)))

    @classmethod
    def create_from_options(cls, options: ImageClassifierOptions) -> ImageClassifier:  # type: ignore[override]
        """A classifier for MediaPipe-style ``options`` (litecls's own options are accepted as they are).

        Args:
            options: the options.

        Returns:
            The classifier.

        Raises:
            FileNotFoundError: no such model file.
            ValueError: an invalid option or model.
            RuntimeError: a delegate that is not available (GPU).
        """
        native = options.to_litecls() if isinstance(options, ImageClassifierOptions) else options
        return super().create_from_options(native)  # type: ignore[return-value]


ImageEmbedderResult = EmbeddingResult


@dataclass
class ImageEmbedderOptions:
    """MediaPipe's ``ImageEmbedderOptions``: same fields, order and defaults.

    ``base_options``: the model and delegate. ``running_mode``: IMAGE, VIDEO
    or LIVE_STREAM. ``l2_normalize``, ``quantize``: ``None`` means no.
    ``result_callback(result, image, timestamp_ms)``: LIVE_STREAM only.
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


class ImageEmbedder(_Embedder):
    """MediaPipe's ``ImageEmbedder``: ``embed``, ``embed_for_video``, ``embed_async``, ``cosine_similarity``.

    Vectors come as MediaPipe gives them: float64, or uint8 bytes when quantized.
    """

    _float_dtype: ClassVar[type] = np.float64
    _quantized_dtype: ClassVar[type] = np.uint8
    ImageEmbedderResult = EmbeddingResult

    @classmethod
    def create_from_model_path(cls, model_path: str) -> ImageEmbedder:  # type: ignore[override]
        """An IMAGE-mode embedder with MediaPipe's default options.

        Args:
            model_path: the .tflite file.

        Returns:
            The embedder.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is not a usable model.
        """
        return cls.create_from_options(ImageEmbedderOptions(BaseOptions(model_asset_path=model_path)))

    @classmethod
    def create_from_options(cls, options: ImageEmbedderOptions) -> ImageEmbedder:  # type: ignore[override]
        """An embedder for MediaPipe-style ``options`` (litecls's own options are accepted as they are).

        Args:
            options: the options.

        Returns:
            The embedder.

        Raises:
            FileNotFoundError: no such model file.
            ValueError: an invalid option or model.
            RuntimeError: a delegate that is not available (GPU).
        """
        native = options.to_litecls() if isinstance(options, ImageEmbedderOptions) else options
        return super().create_from_options(native)  # type: ignore[return-value]


__all__ = ["BaseOptions", "ImageClassifier", "ImageClassifierOptions", "ImageClassifierResult",
           "ImageEmbedder", "ImageEmbedderOptions", "ImageEmbedderResult", "ImageProcessingOptions",
           "RunningMode"]
