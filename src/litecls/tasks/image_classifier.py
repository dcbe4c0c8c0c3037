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
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from litecls.errors import (
    ExportError,
    ImageError,
    LabelsError,
    MetadataError,
    ModelFileError,
    UnknownModelError,
)
from litecls.metadata import PROCESSING_FILE, ModelMetadata, read_metadata
from litecls.models.registry import ModelConfig, get_config, list_models
from litecls.processing.config import (
    INTERPOLATIONS,
    RESIZE_POLICIES,
    ProcessingConfig,
    check_resize_settings,
    resolve_processing,
)
from litecls.processing.image import ImageInput, ImageLimits, image_error
from litecls.processing.postprocess import category_mask, dequantize, is_ambiguous, to_probabilities, top_k
from litecls.processing.preprocess import Normalization, preprocess
from litecls.runtime.interpreter import (
    ClassifierSignature,
    check_scores,
    describe_classifier,
    interpreter_from_bytes,
    read_model_bytes,
)

_log = logging.getLogger(__name__)


@dataclass
class Category:
    """One class of a result: its index in the model output, score and names."""

    index: int
    score: float
    category_name: str | None = None
    display_name: str | None = None


@dataclass
class ClassificationResult:
    """Categories best first, plus how much to trust the top one.

    ``ambiguous`` is True when the top score is under the options'
    ``ambiguity_min_score`` or leads the runner-up by less than
    ``ambiguity_margin`` (measured among the allowed categories, before
    ``max_results`` and ``score_threshold`` cut the list).
    ``applied_softmax`` says the model output logits and litecls turned them
    into probabilities. ``inference_ms`` is the interpreter's time alone.
    """

    categories: list[Category]
    ambiguous: bool
    applied_softmax: bool
    inference_ms: float = 0.0

    @property
    def top(self) -> Category | None:
        """The best category, or ``None`` when nothing passed the filters."""
        return self.categories[0] if self.categories else None


@dataclass
class ImageClassifierOptions:
    """Settings of an :class:`ImageClassifier`; see the module docstring for the defaults' origin.

    ``max_results``: categories per result, -1 for all. ``score_threshold``:
    drop categories scoring under it. ``category_allowlist`` /
    ``category_denylist``: category (or display) names to keep / drop; only
    one may be set. ``labels``, ``mean``, ``std``: for models without
    metadata (they override metadata when given). ``resize_policy``:
    "crop" (keep aspect ratio, centre crop of ``crop_pct``) or "squash".
    ``cache_dir``: where zoo models are built (default: the zoo's cache).
    ``image_limits``: the memory budget of one image (width, height, pixels,
    aspect ratio, memory; default :data:`litecls.processing.image.DEFAULT_LIMITS`).
    """

    model_path: str | os.PathLike
    max_results: int = 5
    score_threshold: float = 0.0
    category_allowlist: list[str] | None = None
    category_denylist: list[str] | None = None
    num_threads: int | None = None
    display_names_locale: str = "en"
    labels: Sequence[str] | str | os.PathLike | None = None
    mean: Normalization | None = None
    std: Normalization | None = None
    resize_policy: str | None = None
    crop_pct: float | None = None
    interpolation: str | None = None
    ambiguity_min_score: float = 0.5
    ambiguity_margin: float = 0.1
    cache_dir: str | os.PathLike | None = None
    image_limits: ImageLimits | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first setting that cannot work."""
        if self.category_allowlist is not None and self.category_denylist is not None:
            raise ValueError("category_allowlist and category_denylist are mutually exclusive: set only one")
        if self.max_results == 0 or self.max_results < -1:
            raise ValueError(f"max_results must be positive, or -1 for all categories; "
                             f"got {self.max_results}")
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be between 0 and 1, got {self.score_threshold}")
        if self.num_threads is not None and (not isinstance(self.num_threads, int) or self.num_threads < 1):
            raise ValueError(f"num_threads must be a positive integer or None, got {self.num_threads!r}")
        if self.resize_policy is not None and self.resize_policy not in RESIZE_POLICIES:
            raise ValueError(f"resize_policy must be one of {RESIZE_POLICIES}, got {self.resize_policy!r}")
        if self.crop_pct is not None and not 0.0 < self.crop_pct <= 1.0:
            raise ValueError(f"crop_pct must be in (0, 1], got {self.crop_pct}")
        if self.interpolation is not None and self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")
        if not 0.0 <= self.ambiguity_min_score <= 1.0 or not 0.0 <= self.ambiguity_margin <= 1.0:
            raise ValueError("ambiguity_min_score and ambiguity_margin must be between 0 and 1")


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
        raise ModelFileError(f"{text}: no such model file, and not a zoo model "
                             f"(zoo models: {', '.join(list_models())})") from None
    except ExportError as exc:
        raise ModelFileError(f"{text}: {exc}") from None
    return build(name, precision, cache=cache_dir), get_config(name)


class ImageClassifier:
    """Classify images with a TFLite model. Create with :meth:`create_from_model_path` or
    :meth:`create_from_options`; use as a context manager or call :meth:`close`.

    :meth:`classify` is safe to call from several threads (inference is
    serialised by a lock; decoding and resizing run in parallel).
    """

    def __init__(self, options: ImageClassifierOptions, _data: bytes, _name: str,
                 _zoo: ModelConfig | None) -> None:
        """Use :meth:`create_from_options`; this loads and checks an already read model."""
        options.validate()
        self._options = options
        self._lock = threading.Lock()
        self._interpreter = interpreter_from_bytes(_data, _name, options.num_threads)
        self._signature: ClassifierSignature = describe_classifier(self._interpreter, _name)
        self._metadata = self._read_metadata(_data, _name, options)
        try:
            self._processing = resolve_processing(
                self._signature.input, self._metadata, _zoo, mean=options.mean, std=options.std,
                crop_pct=options.crop_pct, interpolation=options.interpolation,
                resize_policy=options.resize_policy)
        except ValueError as exc:
            raise ValueError(f"{_name}: {exc}") from None
        meta = self._metadata

        num_classes = self._signature.output.num_classes
        if options.labels is not None:
            self._labels: list[str] | None = load_labels(options.labels)
            self._display_names: list[str] | None = None
            origin = "the labels given in the options"
        else:
            self._labels = list(meta.labels) if meta and meta.labels else None
            names = meta.display_names.get(options.display_names_locale) if meta else None
            self._display_names = list(names) if names else None
            origin = "the model metadata's labels"
        if self._labels is not None and len(self._labels) != num_classes:
            raise LabelsError(f"{_name}: {len(self._labels)} labels in {origin}, but the model outputs "
                              f"{num_classes} classes; the two counts must be equal")
        if self._display_names is not None and len(self._display_names) != num_classes:
            raise LabelsError(f"{_name}: {len(self._display_names)} display names for locale "
                              f"{options.display_names_locale!r}, but the model outputs "
                              f"{num_classes} classes")
        # Probe runs: NaN outputs, and a feature extractor without labels, are refused here.
        check_scores(self._interpreter, self._signature, _name,
                     labelled=self._labels is not None or self._display_names is not None)
        self._mask = category_mask(self._labels, options.category_allowlist, options.category_denylist,
                                   self._display_names)
        self._name = _name
        # Output quantization step: quantized probabilities do not sum to exactly 1.
        out = self._signature.output
        self._step = out.scale if out.quantized else 0.0

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
        """A classifier with default options for a .tflite file or a zoo name."""
        return cls.create_from_options(ImageClassifierOptions(model_path=model_path))

    @classmethod
    def create_from_options(cls, options: ImageClassifierOptions) -> ImageClassifier:
        """A classifier for ``options``; raises ModelFileError, LabelsError or ValueError."""
        options.validate()
        path, zoo = resolve_model(options.model_path, options.cache_dir)
        data, name = read_model_bytes(path)
        return cls(options, data, name, zoo)

    # -- description --------------------------------------------------------------------------

    @property
    def options(self) -> ImageClassifierOptions:
        """The options the classifier was created with."""
        return self._options

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
        """Category names, one per output class, or ``None`` when unknown."""
        return self._labels

    @property
    def display_names(self) -> list[str] | None:
        """Display names in ``display_names_locale``, or ``None``."""
        return self._display_names

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
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._interpreter is None

    def __repr__(self) -> str:
        spec = self._signature.input
        return (f"ImageClassifier({self._name!r}, input={spec.dtype.name}{list(spec.shape)}, "
                f"classes={self._signature.output.num_classes}{', closed' if self.closed else ''})")

    # -- classification -------------------------------------------------------------------------

    def preprocess(self, image: ImageInput) -> np.ndarray:
        """The model's input tensor for ``image``.

        Raises :class:`ImageError` naming the image and the cause for whatever
        opening, decoding, orienting, converting or resizing it raises
        (including ``MemoryError`` and Pillow's own exceptions), so one bad
        image never stops a batch.
        """
        try:
            return preprocess(image, self._signature.input, self._processing, self._options.image_limits)
        except ImageError:
            raise
        except Exception as exc:
            raise image_error(image, exc) from None

    def classify(self, image: ImageInput) -> ClassificationResult:
        """Classify one image: a path, bytes, PIL image or HxWx3 uint8 array.

        An array already of the model's input size is not resized.
        """
        self._check_open()
        return self.classify_tensor(self.preprocess(image))

    def classify_tensor(self, tensor: np.ndarray) -> ClassificationResult:
        """Run an input tensor made by :meth:`preprocess` and rank its categories."""
        with self._lock:
            interpreter = self._check_open()
            started = time.perf_counter()
            interpreter.set_tensor(self._signature.input.index, tensor)
            try:
                interpreter.invoke()
                raw = interpreter.get_tensor(self._signature.output.index)
            except (RuntimeError, ValueError) as exc:  # the model failing stops the run, plainly
                raise ModelFileError(f"{self._name}: the model failed to run: {exc}") from None
            elapsed_ms = (time.perf_counter() - started) * 1000
        return self._rank(raw, elapsed_ms)

    def _rank(self, raw: np.ndarray, inference_ms: float) -> ClassificationResult:
        out, opts = self._signature.output, self._options
        scores = dequantize(raw.reshape(-1), out.scale, out.zero_point)
        probs, applied_softmax = to_probabilities(scores, step=self._step)
        # Rank among the allowed classes; keep at least two for the ambiguity margin.
        order = top_k(probs, -1 if opts.max_results < 0 else max(opts.max_results, 2), mask=self._mask)
        ambiguous = is_ambiguous(probs[order[:2]], opts.ambiguity_min_score, opts.ambiguity_margin)
        if opts.score_threshold > 0:
            order = order[probs[order] >= opts.score_threshold]
        if opts.max_results > 0:
            order = order[:opts.max_results]
        labels, names = self._labels, self._display_names
        categories = [Category(index=int(i), score=float(probs[i]),
                               category_name=labels[i] if labels else None,
                               display_name=names[i] if names else None) for i in order]
        return ClassificationResult(categories, ambiguous, applied_softmax, inference_ms)

    def classify_many(self, images: Iterable[ImageInput],
                      workers: int = 2) -> Iterator[tuple[ImageInput, ClassificationResult | Exception]]:
        """Classify a stream of images, yielding ``(image, result)`` in input order.

        ``workers`` threads decode and resize the next images while the
        interpreter runs the current one (PIL and LiteRT both release the GIL).
        A bad image yields its :class:`ImageError` in place of a result and
        the stream goes on. At most ``2 * workers`` images are read ahead, so
        a long (or endless) iterable is fine.
        """
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
        """Release the interpreter and its memory; later calls raise ``RuntimeError``."""
        with self._lock:
            self._interpreter = None

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
            ValueError: the model's output has no batch axis, or ``batch`` is not 4-D.

        The interpreter's input is resized to ``N`` when ``N`` changes, which re-plans the
        graph (about 0.1 s): keep one classifier per batch size, as ``litecls serve`` does.
        After a resize to ``N != 1``, :meth:`classify_tensor` no longer fits this classifier.
        """
        if batch.ndim != 4 or len(self._signature.output.shape) != 2:
            raise ValueError(f"classify_tensors needs a [N, H, W, C] batch and a [1, classes] output; "
                             f"got {list(batch.shape)} and {list(self._signature.output.shape)}")
        index = self._signature.input.index
        with self._lock:
            interpreter = self._check_open()
            if tuple(interpreter.get_input_details()[0]["shape"]) != batch.shape:
                interpreter.resize_tensor_input(index, list(batch.shape))
                interpreter.allocate_tensors()
            started = time.perf_counter()
            interpreter.set_tensor(index, batch)
            interpreter.invoke()
            raw = interpreter.get_tensor(self._signature.output.index)
            elapsed_ms = (time.perf_counter() - started) * 1000
        return [self._rank(row, elapsed_ms / len(batch)) for row in raw]
