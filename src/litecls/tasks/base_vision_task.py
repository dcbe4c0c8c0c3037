"""What every litecls vision task shares, modelled on MediaPipe Tasks' ``BaseVisionTaskApi``.

A task (:class:`~litecls.tasks.ImageClassifier`,
:class:`~litecls.tasks.ImageEmbedder`) is created from a model path, a zoo
name or model bytes (:class:`BaseOptions`), runs in one
:class:`RunningMode`, turns images into the model's input with the one
:func:`litecls.processing.config.resolve_processing`, applies a region of
interest and rotation (:class:`ImageProcessingOptions`), invokes LiteRT under
a lock, and closes (or is used as a context manager). Subclasses say only how
to read the outputs (:meth:`BaseVisionTask._postprocess`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from litecls.errors import (
    ImageError,
    ModelFileError,
)
from litecls.metadata import ModelMetadata
from litecls.models.registry import ModelConfig
from litecls.processing.config import (
    ProcessingConfig,
    default_normalization,
    resolve_processing,
)
from litecls.processing.image import ImageInput, image_error
from litecls.processing.preprocess import preprocess
from litecls.processing.region import ImageProcessingOptions
from litecls.runtime.interpreter import (
    ClassifierSignature,
    describe_classifier,
    interpreter_from_bytes,
    read_model_bytes,
    resize_input,
)
from litecls.tasks.image_classifier_options import RunningMode
from litecls.tasks.live_stream import LiveStream, LiveStreamStats
from litecls.tasks.model_source import as_input, check_delegate, read_task_metadata, resolve_model

_log = logging.getLogger("litecls.tasks")

Task = TypeVar("Task", bound="BaseVisionTask")


def _mode_words(mode: RunningMode) -> str:
    return mode.name.lower().replace("_", " ")


class BaseVisionTask:
    """A LiteRT model fed images: loading, running modes, preprocessing, invoke, close.

    Subclasses set :attr:`_mode_methods` (the method each running mode uses),
    :attr:`_options_type`, :attr:`_zoo_task` and implement :meth:`_setup_outputs` and :meth:`_postprocess`.
    """

    #: The public method of each running mode (named in errors).
    _mode_methods: ClassVar[dict[RunningMode, str]] = {}
    #: Which zoo file a zoo name resolves to ("classifier" or "embedding").
    _zoo_task: ClassVar[str] = "classifier"
    #: The options class of the task (``create_from_model_path`` fills in its ``model_path``).
    _options_type: ClassVar[type]
    #: Whether the model needs labels (metadata without them is then an error unless the options give them).
    _needs_labels: ClassVar[bool] = True

    def __init__(self, options: Any, _data: bytes, _name: str, _zoo: ModelConfig | None) -> None:
        """Use :meth:`create_from_options`; this loads and checks an already read model.

        Args:
            options: the task's options (checked again here).
            _data: the .tflite file's bytes.
            _name: the model's name in messages (its path, or a stand-in for bytes).
            _zoo: the zoo config when the model is a zoo name (its preprocessing is a fallback).

        Raises:
            ModelFileError: (a ``ValueError``) not a model the task can run, including
                ``MetadataError`` for metadata the options do not make up for.
            LabelsError: (a ``ValueError``) a classifier's labels do not match its outputs.
            DelegateError: (a ``RuntimeError``) an accelerator LiteRT does not offer here.
            ValueError: an invalid option, or preprocessing settings that cannot work.
        """
        options.validate()
        self._options = options
        self._name = _name
        self._lock = threading.Lock()
        self._fixed_batch = False  # set when the model cannot take a batch (see _invoke_batch)
        check_delegate(options.base_options.delegate if options.base_options else None)
        self._interpreter: Interpreter | None = interpreter_from_bytes(_data, _name, options.num_threads)
        self._signature: ClassifierSignature = describe_classifier(self._interpreter, _name)
        self._metadata = read_task_metadata(_data, _name, options, self._signature.input.dtype == np.float32,
                                            self._needs_labels)
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
        self._setup_outputs()
        self._mode = options.running_mode
        self._last_timestamp: int | None = None
        self._live: LiveStream | None = None
        if self._mode == RunningMode.LIVE_STREAM:
            self._live = LiveStream(self, options.result_callback)

    def _setup_outputs(self) -> None:
        """Read and check what the outputs mean (labels, heads...); called once the input is known."""

    def _postprocess(self, raws: list[np.ndarray], inference_ms: float, timestamp_ms: int) -> Any:
        """The result for every output's raw tensor of one image."""
        raise NotImplementedError

    # -- creation ---------------------------------------------------------------------------

    @classmethod
    def create_from_model_path(cls: type[Task], model_path: str | os.PathLike) -> Task:
        """A task of this class in IMAGE mode with its default options.

        ``ImageClassifier.create_from_model_path`` gives an ImageClassifier,
        ``ImageEmbedder.create_from_model_path`` an ImageEmbedder.

        Args:
            model_path: a .tflite file or a zoo name (``NAME[:PRECISION]``; an embedder
                resolves it to the zoo's embedding file).

        Returns:
            The task.

        Raises:
            ModelNotFoundError: (a ``FileNotFoundError``) no such file or zoo model.
            ModelFileError: (a ``ValueError``) the file is not a model the task can run
                (a classifier's ``LabelsError`` is a ``ValueError`` too).
        """
        return cls.create_from_options(cls._options_type(model_path=model_path))

    @classmethod
    def create_from_options(cls: type[Task], options: Any) -> Task:
        """A task of this class for ``options`` (an ImageClassifier for ImageClassifierOptions...).

        Args:
            options: the task's options class (:attr:`_options_type`): the model
                (``model_path`` or ``base_options``: path, zoo name or bytes) and settings.

        Returns:
            The task.

        Raises:
            ModelNotFoundError: (a ``FileNotFoundError``) no such model file.
            ModelFileError, LabelsError: (``ValueError``) the model or a classifier's labels do not work.
            DelegateError: (a ``RuntimeError``) an accelerator LiteRT does not offer here.
            ValueError: an invalid option.
        """
        options.validate()
        base = options.base_options
        if base is not None:
            check_delegate(base.delegate)
        if options.model_path is not None or (base is not None and base.model_asset_path is not None):
            source = options.model_path if options.model_path is not None else base.model_asset_path
            path, zoo = resolve_model(source, options.cache_dir, cls._zoo_task)
            data, name = read_model_bytes(path)
        else:
            data, name = read_model_bytes(base.model_asset_buffer)
            zoo = None
        return cls(options, data, name, zoo)

    # -- description --------------------------------------------------------------------------

    @property
    def options(self) -> Any:
        """The options the task was created with."""
        return self._options

    @property
    def running_mode(self) -> RunningMode:
        """The mode the task was created in."""
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
        """Frames submitted, processed, dropped and failed in LIVE_STREAM mode (``None`` in other modes)."""
        return self._live.stats if self._live is not None else None

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._interpreter is None

    # -- running --------------------------------------------------------------------------------

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
        image = as_input(image)
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
                             f"mode: {_mode_words(self._mode)} mode; use {self._mode_methods[self._mode]}()")

    def _check_timestamp(self, timestamp_ms: int) -> None:
        if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, (int, np.integer)):
            raise ValueError(f"timestamp_ms must be an integer (milliseconds), got {timestamp_ms!r}")
        if self._last_timestamp is not None and timestamp_ms <= self._last_timestamp:
            raise ValueError(f"Input timestamp must be monotonically increasing: got {timestamp_ms} ms "
                             f"after {self._last_timestamp} ms")
        self._last_timestamp = int(timestamp_ms)

    def _process_image(self, image: ImageInput, options: ImageProcessingOptions | None) -> Any:
        """IMAGE mode: one image's result."""
        self._check_mode(RunningMode.IMAGE)
        self._check_open()
        return self._run([self.preprocess(image, options)], 0)

    def _process_video(self, image: ImageInput, timestamp_ms: int,
                       options: ImageProcessingOptions | None) -> Any:
        """VIDEO mode: one frame's result; timestamps must increase."""
        self._check_mode(RunningMode.VIDEO)
        self._check_open()
        with self._lock:
            self._check_timestamp(timestamp_ms)
        tensor = self.preprocess(image, options)
        return self._run([tensor], int(timestamp_ms))

    def _process_async(self, image: ImageInput, timestamp_ms: int,
                       options: ImageProcessingOptions | None) -> None:
        """LIVE_STREAM mode: hand the frame to the worker (see :class:`LiveStream`)."""
        self._check_mode(RunningMode.LIVE_STREAM)
        self._check_open()
        if options is not None:
            options.validate()
        assert self._live is not None
        self._live.submit(image, timestamp_ms, options)

    def _run(self, tensors: list[np.ndarray], timestamp_ms: int) -> Any:
        with self._lock:
            raws, elapsed_ms = self._invoke(self._check_open(), tensors[0])
        return self._postprocess(raws, elapsed_ms, timestamp_ms)

    def _invoke(self, interpreter: Interpreter, tensor: np.ndarray) -> tuple[list[np.ndarray], float]:
        """Every output's raw tensor for ``tensor`` and the invoke's milliseconds (caller holds the lock)."""
        started = time.perf_counter()
        interpreter.set_tensor(self._signature.input.index, tensor)
        try:
            interpreter.invoke()
            raws = [interpreter.get_tensor(spec.index) for spec in self._signature.outputs]
        except (RuntimeError, ValueError) as exc:  # the model failing stops the run, plainly
            raise ModelFileError(f"{self._name}: the model failed to run: {exc}") from None
        return raws, (time.perf_counter() - started) * 1000

    def _invoke_batch(self, batch: np.ndarray, what: str) -> tuple[list[np.ndarray], float]:
        """Every output's raw ``[N, ...]`` tensor for a stacked batch, resizing the input to ``N``."""
        if batch.ndim != 4 or any(len(spec.shape) != 2 for spec in self._signature.outputs):
            raise ValueError(f"{what} needs a [N, H, W, C] batch and [1, D] outputs; got "
                             f"{list(batch.shape)} and {[list(s.shape) for s in self._signature.outputs]}")
        with self._lock:
            interpreter = self._check_open()
            if not self._fixed_batch and tuple(interpreter.get_input_details()[0]["shape"]) != batch.shape:
                self._fixed_batch = not resize_input(interpreter, self._signature.input.index, batch.shape)
            if self._fixed_batch:  # the model's graph takes one image: one invoke each
                runs = [self._invoke(interpreter, batch[k:k + 1]) for k in range(len(batch))]
                return [np.concatenate(raws) for raws in zip(*(r[0] for r in runs), strict=True)], \
                    sum(r[1] for r in runs)
            return self._invoke(interpreter, batch)

    def _map_images(self, images: Iterable[ImageInput], workers: int,
                    finish: Callable[[np.ndarray], Any]) -> Iterator[tuple[ImageInput, Any]]:
        """``(image, finish(tensor) or its ImageError)`` in input order, preprocessing in ``workers`` threads.

        At most ``2 * workers`` images are read ahead, so a long (or endless) iterable is fine.
        """
        self._check_mode(RunningMode.IMAGE)
        self._check_open()
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")

        def prepare(image: ImageInput) -> np.ndarray | ImageError:
            try:
                return self.preprocess(image)
            except ImageError as exc:
                return exc
            except Exception as exc:  # preprocess wraps everything; this guards the guard
                return image_error(image, exc)

        def done(image: ImageInput, future: Future) -> tuple[ImageInput, Any]:
            prepared = future.result()
            return image, prepared if isinstance(prepared, Exception) else finish(prepared)

        pending: deque[tuple[ImageInput, Future]] = deque()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="litecls-preprocess") as pool:
            try:
                for image in images:
                    pending.append((image, pool.submit(prepare, image)))
                    if len(pending) > 2 * workers:
                        yield done(*pending.popleft())
                while pending:
                    yield done(*pending.popleft())
            finally:
                # The consumer stopped early: do not decode images nobody will see.
                for _image, future in pending:
                    future.cancel()

    # -- lifetime -------------------------------------------------------------------------------

    def _check_open(self) -> Interpreter:
        interpreter = self._interpreter
        if interpreter is None:
            raise RuntimeError(f"this {type(self).__name__} is closed; create a new one")
        return interpreter

    def close(self) -> None:
        """Release the interpreter; later calls raise ``RuntimeError``.

        In LIVE_STREAM mode this first waits for the frame being processed
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

    def __enter__(self: Task) -> Task:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
