"""Image classification task, modelled on MediaPipe Tasks' ``ImageClassifier``.

::

    with ImageClassifier.create_from_model_path("efficientnet_lite0") as classifier:
        result = classifier.classify("cat.jpg")
        print(result.categories[0].display_name, result.categories[0].score)

Where the settings come from, in order of precedence:

* ``model_path`` is a .tflite file, or a zoo name such as
  ``"efficientnet_lite0"`` or ``"mobilenet_v2:float32"`` (precision defaults
  to int8) when no file of that name exists: the zoo model is built into the
  cache on first use (that needs ``litecls[zoo]``).
* Preprocessing (size, resize policy, crop fraction, interpolation,
  mean/std): :func:`litecls.processing.config.resolve_processing` takes the
  options, else the model's TFLite metadata (litecls-made files record their
  resize settings there), else the zoo config, else defaults (the largest
  centre square, bilinear; mean/std 127.5 for a float input, raw pixels for a
  quantized one). We crop rather than squash (MediaPipe squashes) because
  the zoo models were trained and evaluated on centre crops and squashing
  distorts shapes; ``resize_policy="squash"`` is there for models trained
  that way.
* Labels and display names: the options' ``labels`` (a list or a file with
  one label per line), else the metadata. Their count must equal the
  number of classes the model outputs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np

from litecls.errors import LabelsError, MetadataError
from litecls.metadata import ScoreCalibration
from litecls.models.registry import ModelConfig
from litecls.processing.image import ImageInput
from litecls.processing.postprocess import (
    calibrate,
    category_mask,
    dequantize,
    is_ambiguous,
    to_probabilities,
    top_k,
)
from litecls.processing.region import ImageProcessingOptions
from litecls.runtime.interpreter import ScoresOutputSpec, check_scores
from litecls.tasks.base_vision_task import BaseVisionTask
from litecls.tasks.classification_result import Category, ClassificationResult, Classifications
from litecls.tasks.image_classifier_options import (
    DEFAULT_LOCALE,
    DEFAULT_MAX_RESULTS,
    ImageClassifierOptions,
    RunningMode,
)
from litecls.tasks.live_stream import LiveStreamStats
from litecls.tasks.model_source import check_delegate, resolve_model

__all__ = ["ImageClassifier", "LiveStreamStats", "check_delegate", "load_labels", "resolve_model"]


def load_labels(source: Sequence[str] | str | os.PathLike) -> list[str]:
    """Labels from a list, or from a text file with one label per line (trailing blank lines ignored)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise LabelsError(f"{path}: no such labels file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise LabelsError(f"{path}: cannot read labels file: {exc}") from None
        while lines and not lines[-1].strip():
            lines.pop()
        labels = [line.strip() for line in lines]
        if "" in labels:
            raise LabelsError(f"{path}: line {labels.index('') + 1} is empty; every class needs a label")
        return labels
    labels = list(source)
    bad = [label for label in labels if not isinstance(label, str)]
    if bad:
        raise LabelsError(f"labels must be strings, got {type(bad[0]).__name__} {bad[0]!r}")
    return labels


@dataclass(frozen=True)
class _Head:
    """One output head, ready to rank: its tensor, names, filter and default threshold."""

    spec: ScoresOutputSpec
    name: str | None
    labels: list[str] | None
    display_names: list[str] | None
    mask: np.ndarray | None
    threshold: float | None
    calibration: ScoreCalibration | None = None



class ImageClassifier(BaseVisionTask):
    """Classify images with a TFLite model. Create with :meth:`create_from_model_path` or
    :meth:`create_from_options`; use as a context manager or call :meth:`close`.

    The options' ``running_mode`` decides the method: ``classify`` (IMAGE,
    also :meth:`classify_many`), ``classify_for_video`` (VIDEO) or
    ``classify_async`` (LIVE_STREAM); any other raises ``ValueError``.
    :meth:`classify` is safe to call from several threads (inference is
    serialised by a lock; decoding and resizing run in parallel).
    """

    #: Names in a category allowlist/denylist that match no label raise (litecls) or are ignored (MediaPipe).
    _strict_category_names = True
    _mode_methods: ClassVar[dict[RunningMode, str]] = {
        RunningMode.IMAGE: "classify", RunningMode.VIDEO: "classify_for_video",
        RunningMode.LIVE_STREAM: "classify_async"}

    def __init__(self, options: ImageClassifierOptions, _data: bytes, _name: str,
                 _zoo: ModelConfig | None) -> None:
        """Use :meth:`create_from_options`; this loads and checks an already read model."""
        super().__init__(options, _data, _name, _zoo)

    def _setup_outputs(self) -> None:
        """Each head's labels, filter and threshold; probes refuse NaN outputs and unlabelled extractors."""
        self._heads = [self._head(i, spec) for i, spec in enumerate(self._signature.outputs)]
        assert self._interpreter is not None
        check_scores(self._interpreter, self._signature, self._name,
                     labelled=bool(self._heads[0].labels or self._heads[0].display_names))
        options = self._options
        self._max_results = DEFAULT_MAX_RESULTS if options.max_results is None else options.max_results

    def _head(self, i: int, spec: ScoresOutputSpec) -> _Head:
        """Labels, display names, filter and threshold of output ``i``, checked against its size."""
        options, meta = self._options, self._metadata
        head_meta = meta.heads[i] if meta is not None and len(meta.heads) > i else None
        locale = options.display_names_locale or DEFAULT_LOCALE
        if i == 0 and options.labels is not None:
            labels: list[str] | None = load_labels(options.labels)
            names: list[str] | None = None
            origin = "the labels given in the options"
        else:
            source = head_meta if head_meta is not None else (meta if i == 0 else None)
            labels = list(source.labels) if source is not None and source.labels else None
            found = source.display_names.get(locale) if source is not None else None
            names = list(found) if found else None
            origin = "the model metadata's labels"
        which = "" if len(self._signature.outputs) == 1 else f" (output head {i})"
        if labels is not None and len(labels) != spec.num_classes:
            raise LabelsError(f"{self._name}: {len(labels)} labels in {origin}, but the model outputs "
                              f"{spec.num_classes} classes{which}; the two counts must be equal")
        if names is not None and len(names) != spec.num_classes:
            raise LabelsError(f"{self._name}: {len(names)} display names for locale {locale!r}, but the "
                              f"model outputs {spec.num_classes} classes{which}")
        mask = self._mask(labels, names)
        if head_meta is not None:
            name, default_threshold, calibration = (head_meta.name, head_meta.score_threshold,
                                                    head_meta.score_calibration)
        elif meta is not None and i == 0:
            name, default_threshold = meta.head_name, meta.score_threshold
            calibration = meta.score_calibration
        else:
            name, default_threshold, calibration = None, None, None
        if (calibration is not None and len(calibration.parameters) == spec.num_classes + 1
                and calibration.parameters[-1] is None):  # a final newline
            calibration = replace(calibration, parameters=calibration.parameters[:-1])
        if calibration is not None and len(calibration.parameters) != spec.num_classes:
            raise MetadataError(f"{self._name}: the score calibration file has {len(calibration.parameters)} "
                                f"lines, but the model outputs {spec.num_classes} classes{which}")
        threshold = options.score_threshold if options.score_threshold is not None else default_threshold
        return _Head(spec, name or None, labels, names, mask, None if threshold is None else float(threshold),
                     calibration)

    def _mask(self, labels: list[str] | None, names: list[str] | None) -> np.ndarray | None:
        """The allow/deny mask of a head; an empty list is no filter (as in MediaPipe)."""
        allow = self._options.category_allowlist or None
        deny = self._options.category_denylist or None
        if allow is None and deny is None:
            return None
        if not self._strict_category_names or len(self._signature.outputs) > 1:
            known = set(labels or ()) | set(names or ())
            allow = [n for n in allow if n in known] if allow else None
            deny = [n for n in deny if n in known] if deny else None
            if not allow and not deny:
                return None
        return category_mask(labels, allow, deny, names)

    @classmethod
    def create_from_model_path(cls, model_path: str | os.PathLike) -> ImageClassifier:
        """A classifier in IMAGE mode with default options.

        Args:
            model_path: a .tflite file or a zoo name.

        Returns:
            The classifier.

        Raises:
            ModelNotFoundError: (a ``FileNotFoundError``) no such file or zoo model.
            ModelFileError: (a ``ValueError``) the file is not a usable classifier.
        """
        return cls.create_from_options(ImageClassifierOptions(model_path=model_path))

    @classmethod
    def create_from_options(cls, options: ImageClassifierOptions) -> ImageClassifier:
        """A classifier for ``options``.

        Args:
            options: the model (``model_path`` or ``base_options``) and settings.

        Returns:
            The classifier.

        Raises:
            ModelNotFoundError: (a ``FileNotFoundError``) no such model file.
            ModelFileError, LabelsError: (``ValueError``) the model or its labels do not work.
            DelegateError: (a ``RuntimeError``) an accelerator LiteRT does not offer here.
            ValueError: an invalid option.
        """
        return cls._create(options)

    # -- description --------------------------------------------------------------------------

    @property
    def labels(self) -> list[str] | None:
        """Category names of the first head, one per output class, or ``None`` when unknown."""
        return self._heads[0].labels

    @property
    def display_names(self) -> list[str] | None:
        """Display names of the first head in ``display_names_locale``, or ``None``."""
        return self._heads[0].display_names

    @property
    def head_names(self) -> list[str | None]:
        """The output heads' names from the metadata, in output order."""
        return [head.name for head in self._heads]

    def __repr__(self) -> str:
        spec = self._signature.input
        classes = ", ".join(str(h.spec.num_classes) for h in self._heads)
        return (f"ImageClassifier({self._name!r}, input={spec.dtype.name}{list(spec.shape)}, "
                f"classes={classes}, mode={self._mode.name}{', closed' if self.closed else ''})")

    # -- classification -------------------------------------------------------------------------

    def classify(self, image: ImageInput,
                 image_processing_options: ImageProcessingOptions | None = None) -> ClassificationResult:
        """Classify one image (IMAGE mode).

        Args:
            image: a path, bytes, PIL image, HxWx3 uint8 array (one already of
                the model's input size is not resized) or MediaPipe-style ``Image``.
            image_processing_options: region of interest and rotation.

        Returns:
            The result, categories best first.

        Raises:
            ImageError: an unreadable image.
            ValueError: another running mode, or a region that does not fit.
        """
        return self._process_image(image, image_processing_options)

    def classify_for_video(self, image: ImageInput, timestamp_ms: int,
                           image_processing_options: ImageProcessingOptions | None = None
                           ) -> ClassificationResult:
        """Classify one decoded video frame (VIDEO mode).

        Args:
            image: the frame (as for :meth:`classify`).
            timestamp_ms: the frame's time; must increase from call to call.
            image_processing_options: region of interest and rotation.

        Returns:
            The result, with ``timestamp_ms`` set.

        Raises:
            ImageError: an unreadable frame.
            ValueError: another running mode, a timestamp not after the
                previous one, or a region that does not fit.
        """
        return self._process_video(image, timestamp_ms, image_processing_options)

    def classify_async(self, image: ImageInput, timestamp_ms: int,
                       image_processing_options: ImageProcessingOptions | None = None) -> None:
        """Hand a camera frame to the worker and return at once (LIVE_STREAM mode).

        The options' ``result_callback(result, image, timestamp_ms)`` gets the
        result, from one worker thread, in timestamp order. While a frame is
        being classified, the newest frame waits and older waiting ones are
        dropped (see :attr:`live_stream_stats`), so a fast camera never
        builds a queue. An array image is copied, so the caller may reuse its buffer.

        Args:
            image: the frame (as for :meth:`classify`).
            timestamp_ms: the frame's time; must increase from call to call.
            image_processing_options: region of interest and rotation.

        Raises:
            ValueError: another running mode, a timestamp not after the
                previous one, or invalid processing options.
        """
        self._process_async(image, timestamp_ms, image_processing_options)

    def classify_tensor(self, tensor: np.ndarray) -> ClassificationResult:
        """Run an input tensor made by :meth:`preprocess` and rank its categories (IMAGE mode)."""
        self._check_mode(RunningMode.IMAGE)
        return self._run([tensor], 0)

    def _postprocess(self, raws: list[np.ndarray], inference_ms: float,
                     timestamp_ms: int) -> ClassificationResult:
        """Rank every head's categories for one image."""
        opts, limit = self._options, self._max_results
        classifications, ambiguous, softmaxed = [], False, False
        for i, (head, raw) in enumerate(zip(self._heads, raws, strict=True)):
            out = head.spec
            scores = dequantize(raw.reshape(-1), out.scale, out.zero_point)
            if head.calibration is not None:  # calibrated scores are each class's probability already
                probs, applied = calibrate(scores, head.calibration), False
            elif opts.raw_scores:
                probs, applied = scores.astype(np.float64), False
            else:
                # Quantized probabilities do not sum to exactly 1: allow one step per class.
                probs, applied = to_probabilities(scores, step=out.scale if out.quantized else 0.0)
            # Rank among the allowed classes; keep at least two for the ambiguity margin.
            order = top_k(probs, -1 if limit < 0 else max(limit, 2), mask=head.mask)
            if i == 0:
                ambiguous = is_ambiguous(probs[order[:2]], opts.ambiguity_min_score, opts.ambiguity_margin)
                softmaxed = applied
            if head.threshold is not None:
                order = order[probs[order] >= head.threshold]
            if limit > 0:
                order = order[:limit]
            labels, names = head.labels, head.display_names
            categories = [Category(index=int(k), score=float(probs[k]),
                                   display_name=names[k] if names else None,
                                   category_name=labels[k] if labels else None) for k in order]
            classifications.append(Classifications(categories, i, head.name))
        return ClassificationResult(classifications, timestamp_ms, ambiguous, softmaxed, inference_ms)

    def classify_many(self, images: Iterable[ImageInput],
                      workers: int = 2) -> Iterator[tuple[ImageInput, ClassificationResult | Exception]]:
        """Classify a stream of images, yielding ``(image, result)`` in input order (IMAGE mode).

        ``workers`` threads decode and resize the next images while the
        interpreter runs the current one (PIL and LiteRT both release the GIL).
        A bad image yields its :class:`ImageError` in place of a result and
        the stream goes on. At most ``2 * workers`` images are read ahead, so
        a long (or endless) iterable is fine.
        """
        return self._map_images(images, workers, self.classify_tensor)

    def classify_tensors(self, batch: np.ndarray) -> list[ClassificationResult]:
        """Run ``N`` stacked :meth:`preprocess` tensors (``[N, H, W, C]``) in one invoke.

        Args:
            batch: the input tensors of ``N`` images, concatenated on the first axis.

        Returns:
            One result per image, in order; each ``inference_ms`` is the invoke's time over ``N``.

        Raises:
            RuntimeError: the classifier is closed.
            ValueError: an output has no batch axis, or ``batch`` is not 4-D.
            ModelFileError: the model fails to run.

        The interpreter's input is resized to ``N`` when ``N`` changes, which re-plans the
        graph (about 0.1 s): keep one classifier per batch size, as ``litecls serve`` does.
        After a resize to ``N != 1``, :meth:`classify_tensor` no longer fits this classifier.
        """
        raws, elapsed_ms = self._invoke_batch(batch, "classify_tensors")
        return [self._postprocess([raw[k] for raw in raws], elapsed_ms / len(batch), 0)
                for k in range(len(batch))]
