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

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from litecls.errors import (
    DelegateError,
    ExportError,
    ImageError,
    LabelsError,
    MetadataError,
    ModelFileError,
    ModelNotFoundError,
    UnknownModelError,
)
from litecls.metadata import PROCESSING_FILE, ModelMetadata, ScoreCalibration, read_metadata
from litecls.models.registry import ModelConfig, get_config, list_models
from litecls.processing.config import (
    ProcessingConfig,
    check_resize_settings,
    default_normalization,
    resolve_processing,
)
from litecls.processing.image import ImageInput, image_error
from litecls.processing.postprocess import (
    calibrate,
    category_mask,
    dequantize,
    is_ambiguous,
    to_probabilities,
    top_k,
)
from litecls.processing.preprocess import preprocess
from litecls.processing.region import ImageProcessingOptions
from litecls.runtime.interpreter import (
    ClassifierSignature,
    ScoresOutputSpec,
    check_scores,
    describe_classifier,
    interpreter_from_bytes,
    read_model_bytes,
)
from litecls.tasks.classification_result import Category, ClassificationResult, Classifications
from litecls.tasks.image_classifier_options import (
    DEFAULT_LOCALE,
    DEFAULT_MAX_RESULTS,
    BaseOptions,
    ImageClassifierOptions,
    RunningMode,
)

_log = logging.getLogger(__name__)


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


def resolve_model(model_path: str | os.PathLike,
                  cache_dir: str | os.PathLike | None = None) -> tuple[Path, ModelConfig | None]:
    """``(file, zoo config or None)`` for a model file or a zoo reference like ``"mobilenet_v2:float32"``.

    A name that is not an existing file, has no directory part and no
    ``.tflite`` suffix is looked up in the zoo and built on first use.
    """
    text = os.fspath(model_path)
    path = Path(text)
    looks_like_ref = ("/" not in text and os.sep not in text and not text.endswith(".tflite")
                      and not path.exists())
    if not looks_like_ref:
        return path, None
    from litecls.models.zoo import build, parse_model_ref

    try:
        name, precision = parse_model_ref(text)
    except UnknownModelError:
        raise ModelNotFoundError(f"{text}: no such model file, and not a zoo model "
                             f"(zoo models: {', '.join(list_models())})") from None
    except ExportError as exc:
        raise ModelFileError(f"{text}: {exc}") from None
    return build(name, precision, cache=cache_dir), get_config(name)


def check_delegate(delegate: BaseOptions.Delegate | None) -> None:
    """Raise :class:`DelegateError` for an accelerator the ``ai-edge-litert`` Interpreter does not have.

    CPU (and DEFAULT/``None``): LiteRT's CPU kernels, with XNNPACK applied by
    LiteRT itself. GPU: the wheel has no GPU delegate for its Interpreter
    (it ships a WebGPU accelerator only for its ``CompiledModel`` API).

    Args:
        delegate: the requested accelerator.

    Raises:
        DelegateError: GPU, or a value that is not a delegate.
    """
    if delegate is None or delegate in (BaseOptions.Delegate.DEFAULT, BaseOptions.Delegate.CPU):
        return
    if delegate == BaseOptions.Delegate.GPU:
        raise DelegateError("BaseOptions.Delegate.GPU is not available: the ai-edge-litert Interpreter has "
                            "no GPU delegate (its wheel ships LiteRT's CPU kernels with XNNPACK); use "
                            "Delegate.CPU")
    raise DelegateError(f"unknown delegate {delegate!r}; use BaseOptions.Delegate.CPU")


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


@dataclass
class LiveStreamStats:
    """What happened to the frames given to :meth:`ImageClassifier.classify_async`."""

    submitted: int = 0
    classified: int = 0
    dropped: int = 0
    failed: int = 0


_MODE_METHODS = {RunningMode.IMAGE: "classify", RunningMode.VIDEO: "classify_for_video",
                 RunningMode.LIVE_STREAM: "classify_async"}


class ImageClassifier:
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

    def __init__(self, options: ImageClassifierOptions, _data: bytes, _name: str,
                 _zoo: ModelConfig | None) -> None:
        """Use :meth:`create_from_options`; this loads and checks an already read model."""
        options.validate()
        self._options = options
        self._name = _name
        self._lock = threading.Lock()
        check_delegate(options.base_options.delegate if options.base_options else None)
        self._interpreter = interpreter_from_bytes(_data, _name, options.num_threads)
        self._signature: ClassifierSignature = describe_classifier(self._interpreter, _name)
        self._metadata = self._read_metadata(_data, _name, options)
        mean, std = options.mean, options.std
        if not options.normalize_quantized_input and self._signature.input.quantized:
            mean, std = default_normalization(self._signature.input)  # raw pixels, as MediaPipe feeds them
        try:
            self._processing = resolve_processing(
                self._signature.input, self._metadata, _zoo, mean=mean, std=std,
                crop_pct=options.crop_pct, interpolation=options.interpolation,
                resize_policy=options.resize_policy)
        except ValueError as exc:
            raise ValueError(f"{_name}: {exc}") from None
        self._heads = [self._head(i, spec) for i, spec in enumerate(self._signature.outputs)]
        # Probe runs: NaN outputs, and a feature extractor without labels, are refused here.
        check_scores(self._interpreter, self._signature, _name,
                     labelled=bool(self._heads[0].labels or self._heads[0].display_names))
        self._max_results = DEFAULT_MAX_RESULTS if options.max_results is None else options.max_results
        # Output quantization step: quantized probabilities do not sum to exactly 1.
        self._mode = options.running_mode
        self._last_timestamp: int | None = None
        self._live: _LiveStream | None = None
        if self._mode == RunningMode.LIVE_STREAM:
            self._live = _LiveStream(self, options.result_callback)  # type: ignore[arg-type]

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

    def _read_metadata(self, data: bytes, name: str, options: ImageClassifierOptions) -> ModelMetadata | None:
        """The model's metadata; without it only where nothing it would give is needed.

        Corrupt metadata, or a label file it names but the model lacks, is an
        error unless the options give what it would have given: labels, and
        mean/std for a float input (wrong normalisation gives wrong answers
        silently). A missing processing file falls back to the defaults.
        """
        try:
            meta = read_metadata(data)
        except MetadataError as exc:
            float_input = self._signature.input.dtype == np.float32
            needed = ["labels"] if options.labels is None else []
            if float_input and (options.mean is None or options.std is None):
                needed.append("mean and std")
            if needed:
                raise MetadataError(f"{name}: {exc}; give {' and '.join(needed)} in the options "
                                    "to use the model without its metadata") from None
            _log.warning("%s: %s; using the options instead of the metadata", name, exc)
            return None
        if meta is not None and meta.processing is not None:
            try:
                check_resize_settings(meta.processing)
            except ValueError as exc:
                _log.warning("%s: ignoring the resize settings in its metadata: %s", name, exc)
                meta.processing = None
        if meta is None or not meta.missing_files:
            return meta
        missing = ", ".join(meta.missing_files)
        labels_missing = any(f != PROCESSING_FILE for f in meta.missing_files)
        if labels_missing and options.labels is None:
            raise MetadataError(f"{name}: the metadata names {missing} but the model does not carry "
                                "(damaged or stripped file?); give labels in the options to use it anyway")
        _log.warning("%s: the metadata names %s but the model does not carry; using %s", name, missing,
                     "the options' labels" if labels_missing else "default resizing")
        return meta

    # -- creation ---------------------------------------------------------------------------

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
        options.validate()
        base = options.base_options
        if base is not None:
            check_delegate(base.delegate)
        if options.model_path is not None or (base is not None and base.model_asset_path is not None):
            source = options.model_path if options.model_path is not None else base.model_asset_path  # type: ignore[union-attr]
            path, zoo = resolve_model(source, options.cache_dir)  # type: ignore[arg-type]
            data, name = read_model_bytes(path)
        else:
            data, name = read_model_bytes(base.model_asset_buffer)  # type: ignore[union-attr, arg-type]
            zoo = None
        return cls(options, data, name, zoo)

    # -- description --------------------------------------------------------------------------

    @property
    def options(self) -> ImageClassifierOptions:
        """The options the classifier was created with."""
        return self._options

    @property
    def running_mode(self) -> RunningMode:
        """The mode the classifier was created in."""
        return self._mode

    @property
    def signature(self) -> ClassifierSignature:
        """The model's input and output tensors."""
        return self._signature

    @property
    def metadata(self) -> ModelMetadata | None:
        """The model's TFLite metadata, or ``None`` when it has none."""
        return self._metadata

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

    @property
    def processing(self) -> ProcessingConfig:
        """How images become this model's input (resolved once, at creation)."""
        return self._processing

    @property
    def normalization(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)`` in pixel units, as applied before quantizing the input."""
        return np.asarray(self._processing.mean, np.float32), np.asarray(self._processing.std, np.float32)

    @property
    def resize(self) -> tuple[str, float, str]:
        """``(policy, crop_pct, interpolation)`` used to bring images to the input size."""
        p = self._processing
        return p.resize_policy, p.crop_pct, p.interpolation

    @property
    def live_stream_stats(self) -> LiveStreamStats | None:
        """Frames submitted, classified, dropped and failed in LIVE_STREAM mode (``None`` in other modes)."""
        return self._live.stats if self._live is not None else None

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._interpreter is None

    def __repr__(self) -> str:
        spec = self._signature.input
        classes = ", ".join(str(h.spec.num_classes) for h in self._heads)
        return (f"ImageClassifier({self._name!r}, input={spec.dtype.name}{list(spec.shape)}, "
                f"classes={classes}, mode={self._mode.name}{', closed' if self.closed else ''})")

    # -- classification -------------------------------------------------------------------------

    def preprocess(self, image: ImageInput,
                   image_processing_options: ImageProcessingOptions | None = None) -> np.ndarray:
        """The model's input tensor for ``image``.

        Args:
            image: a path, bytes, PIL image, uint8 array or MediaPipe-style ``Image``.
            image_processing_options: region of interest and rotation, applied before resizing.

        Returns:
            The ``[1, H, W, C]`` tensor.

        Raises:
            ImageError: for whatever opening, decoding, orienting, converting, cutting or resizing
                the image raises (including ``MemoryError``, Pillow's own exceptions and a region
                that does not fit the image: ImageError is a ValueError), naming the image and
                the cause, so one bad image never stops a batch.
        """
        image = _as_input(image)
        try:
            return preprocess(image, self._signature.input, self._processing, self._options.image_limits,
                              image_processing_options)
        except ImageError:
            raise
        except Exception as exc:
            raise image_error(image, exc) from None

    def _check_mode(self, wanted: RunningMode) -> None:
        if self._mode != wanted:
            raise ValueError(f"Task is not initialized with the {_mode_words(wanted)} mode. Current running "
                             f"mode: {_mode_words(self._mode)} mode; use {_MODE_METHODS[self._mode]}()")

    def _check_timestamp(self, timestamp_ms: int) -> None:
        if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, (int, np.integer)):
            raise ValueError(f"timestamp_ms must be an integer (milliseconds), got {timestamp_ms!r}")
        if self._last_timestamp is not None and timestamp_ms <= self._last_timestamp:
            raise ValueError(f"Input timestamp must be monotonically increasing: got {timestamp_ms} ms "
                             f"after {self._last_timestamp} ms")
        self._last_timestamp = int(timestamp_ms)

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
        self._check_mode(RunningMode.IMAGE)
        self._check_open()
        return self.classify_tensor(self.preprocess(image, image_processing_options))

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
        self._check_mode(RunningMode.VIDEO)
        self._check_open()
        with self._lock:
            self._check_timestamp(timestamp_ms)
        tensor = self.preprocess(image, image_processing_options)
        return self._run([tensor], int(timestamp_ms))

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
        self._check_mode(RunningMode.LIVE_STREAM)
        self._check_open()
        if image_processing_options is not None:
            image_processing_options.validate()
        assert self._live is not None
        self._live.submit(image, timestamp_ms, image_processing_options)

    def classify_tensor(self, tensor: np.ndarray) -> ClassificationResult:
        """Run an input tensor made by :meth:`preprocess` and rank its categories (IMAGE mode)."""
        self._check_mode(RunningMode.IMAGE)
        return self._run([tensor], 0)

    def _run(self, tensors: list[np.ndarray], timestamp_ms: int) -> ClassificationResult:
        with self._lock:
            raws, elapsed_ms = self._invoke(self._check_open(), tensors[0])
        return self._rank(raws, elapsed_ms, timestamp_ms)

    def _invoke(self, interpreter: Interpreter, tensor: np.ndarray) -> tuple[list[np.ndarray], float]:
        """Every head's raw output for ``tensor`` and the invoke's milliseconds (caller holds the lock)."""
        started = time.perf_counter()
        interpreter.set_tensor(self._signature.input.index, tensor)
        try:
            interpreter.invoke()
            raws = [interpreter.get_tensor(head.spec.index) for head in self._heads]
        except (RuntimeError, ValueError) as exc:  # the model failing stops the run, plainly
            raise ModelFileError(f"{self._name}: the model failed to run: {exc}") from None
        return raws, (time.perf_counter() - started) * 1000

    def _rank(self, raws: list[np.ndarray], inference_ms: float, timestamp_ms: int) -> ClassificationResult:
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
        self._check_mode(RunningMode.IMAGE)
        self._check_open()
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")

        def prepare(image: ImageInput) -> np.ndarray | ImageError:
            try:
                return self.preprocess(image)
            except ImageError as exc:
                return exc
            except Exception as exc:  # preprocess wraps everything; this guards the guard
                return image_error(image, exc)

        pending: deque[tuple[ImageInput, Future]] = deque()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="litecls-preprocess") as pool:
            try:
                for image in images:
                    pending.append((image, pool.submit(prepare, image)))
                    if len(pending) > 2 * workers:
                        yield self._finish(*pending.popleft())
                while pending:
                    yield self._finish(*pending.popleft())
            finally:
                # The consumer stopped early: do not decode images nobody will see.
                for _image, future in pending:
                    future.cancel()

    def _finish(self, image: ImageInput,
                future: Future) -> tuple[ImageInput, ClassificationResult | Exception]:
        prepared = future.result()
        if isinstance(prepared, Exception):
            return image, prepared
        return image, self.classify_tensor(prepared)

    # -- lifetime -------------------------------------------------------------------------------

    def _check_open(self) -> Interpreter:
        interpreter = self._interpreter
        if interpreter is None:
            raise RuntimeError("this ImageClassifier is closed; create a new one")
        return interpreter

    def close(self) -> None:
        """Release the interpreter; later calls raise ``RuntimeError``.

        In LIVE_STREAM mode this first waits for the frame being classified
        and its callback (a frame still waiting is dropped), so it returns
        within about one inference time.
        """
        if self._live is not None:
            self._live.close()
        with self._lock:
            self._interpreter = None

    def __del__(self) -> None:
        live = getattr(self, "_live", None)
        if live is not None:  # dropped without close(): end the LIVE_STREAM worker
            live.close()

    def __enter__(self) -> ImageClassifier:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

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
        if batch.ndim != 4 or any(len(head.spec.shape) != 2 for head in self._heads):
            raise ValueError(f"classify_tensors needs a [N, H, W, C] batch and [1, classes] outputs; "
                             f"got {list(batch.shape)} and {[list(h.spec.shape) for h in self._heads]}")
        index = self._signature.input.index
        with self._lock:
            interpreter = self._check_open()
            if tuple(interpreter.get_input_details()[0]["shape"]) != batch.shape:
                interpreter.resize_tensor_input(index, list(batch.shape))
                interpreter.allocate_tensors()
            raws, elapsed_ms = self._invoke(interpreter, batch)
        return [self._rank([raw[k] for raw in raws], elapsed_ms / len(batch), 0) for k in range(len(batch))]


def _mode_words(mode: RunningMode) -> str:
    return mode.name.lower().replace("_", " ")


def _as_input(image: object) -> ImageInput:
    """A MediaPipe-style ``Image`` (anything with ``numpy_view()``) as its array; other inputs as they are."""
    if not isinstance(image, np.ndarray) and callable(getattr(image, "numpy_view", None)):
        return np.asarray(image.numpy_view())  # type: ignore[union-attr]
    return image  # type: ignore[return-value]


class _LiveStream:
    """LIVE_STREAM mode: one worker thread, one frame in flight, at most one waiting (the newest)."""

    def __init__(self, classifier: ImageClassifier, callback: Callable) -> None:
        # A weak reference: a classifier dropped without close() is collected; its __del__ ends the worker.
        self._classifier = weakref.ref(classifier)
        self._callback = callback
        self._cond = threading.Condition()
        self._current: tuple | None = None  # handed to the worker
        self._waiting: tuple | None = None  # arrived while busy; replaced by a newer frame
        self._busy = False
        self._closing = False
        self.stats = LiveStreamStats()
        self._thread = threading.Thread(target=self._work, name="litecls-live-stream", daemon=True)
        self._thread.start()

    def submit(self, image: ImageInput, timestamp_ms: int, region: ImageProcessingOptions | None) -> None:
        kept = image.copy() if isinstance(image, np.ndarray) else image  # the caller may reuse its buffer
        with self._cond:
            if self._closing:
                raise RuntimeError("this ImageClassifier is closed; create a new one")
            classifier = self._classifier()
            if classifier is None:
                raise RuntimeError("this ImageClassifier is closed; create a new one")
            classifier._check_timestamp(timestamp_ms)
            self.stats.submitted += 1
            frame = (image, kept, int(timestamp_ms), region)
            if not self._busy:
                self._busy, self._current = True, frame
                self._cond.notify()
            else:
                if self._waiting is not None:
                    self.stats.dropped += 1
                self._waiting = frame

    def _work(self) -> None:
        while True:
            with self._cond:
                while self._current is None and not self._closing:
                    self._cond.wait()
                if self._current is None:
                    return
                frame = self._current
            original, kept, timestamp_ms, region = frame
            classifier = self._classifier()
            try:
                if classifier is None:
                    raise RuntimeError("the classifier was garbage-collected")
                result = classifier._run([classifier.preprocess(kept, region)], timestamp_ms)
            except Exception as exc:  # a bad frame must not stop the stream
                _log.error("live stream frame at %d ms not classified: %s", timestamp_ms, exc)
                result = None
            del classifier  # hold no reference while idle
            if result is not None:
                try:
                    self._callback(result, original, timestamp_ms)
                except Exception:
                    _log.exception("result_callback raised for the frame at %d ms", timestamp_ms)
            with self._cond:
                if result is None:
                    self.stats.failed += 1
                else:
                    self.stats.classified += 1
                if self._waiting is not None and not self._closing:
                    self._current, self._waiting = self._waiting, None
                else:
                    self._current, self._busy = None, False
                    self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            if self._closing:
                return
            self._closing = True
            if self._waiting is not None:
                self.stats.dropped += 1
                self._waiting = None
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:  # close() from inside the callback
            self._thread.join()
