"""Image embedding task, modelled on MediaPipe Tasks' ``ImageEmbedder``.

::

    with ImageEmbedder.create_from_model_path("efficientnet_lite0:int8") as embedder:
        a, b = embedder.embed("cat.jpg"), embedder.embed("cat-copy.jpg")
        print(ImageEmbedder.cosine_similarity(a.embeddings[0], b.embeddings[0]))

A zoo name resolves to the zoo's embedding file (``NAME-embedding-PRECISION.tflite``:
the classifier cut before its classifier layer, a 1280-value pooled feature
vector), built into the cache on first use. Any .tflite with one image input
and ``[1, D]`` outputs works, e.g. one made by
:func:`litecls.training.embedder.export_embedder` from a trained model, or
:func:`litecls.export.embedding.write_embedder` from any classifier .tflite
that ends in a FULLY_CONNECTED layer (``litecls embed`` and ``litecls serve``
cut a labelled classifier file so by themselves).
Preprocessing is resolved as for :class:`litecls.tasks.ImageClassifier`.

For bulk use, :meth:`ImageEmbedder.embed_many` streams ``(image, vector)``
pairs with batched inference and :meth:`ImageEmbedder.embed_tensors` runs a
stacked batch of preprocessed tensors.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import ClassVar

import numpy as np

from litecls.errors import ModelFileError
from litecls.processing.image import ImageInput
from litecls.processing.postprocess import dequantize
from litecls.processing.region import ImageProcessingOptions
from litecls.runtime.interpreter import check_scores
from litecls.tasks.base_vision_task import BaseVisionTask
from litecls.tasks.embedding_result import (
    Embedding,
    EmbeddingResult,
    cosine_similarity,
    l2_normalized,
    scalar_quantized,
)
from litecls.tasks.image_classifier_options import RunningMode
from litecls.tasks.image_embedder_options import ImageEmbedderOptions

#: Images per invoke in :meth:`ImageEmbedder.embed_many`.
DEFAULT_BATCH = 8


class ImageEmbedder(BaseVisionTask):
    """Turn images into feature vectors with a TFLite model. Create with :meth:`create_from_model_path`
    or :meth:`create_from_options`; use as a context manager or call :meth:`close`.

    The options' ``running_mode`` decides the method: ``embed`` (IMAGE, also
    :meth:`embed_many` and :meth:`embed_tensors`), ``embed_for_video``
    (VIDEO) or ``embed_async`` (LIVE_STREAM); any other raises ``ValueError``.
    """

    _mode_methods: ClassVar[dict[RunningMode, str]] = {
        RunningMode.IMAGE: "embed", RunningMode.VIDEO: "embed_for_video",
        RunningMode.LIVE_STREAM: "embed_async"}
    _zoo_task: ClassVar[str] = "embedding"
    _needs_labels: ClassVar[bool] = False
    #: dtypes of the vectors in results (MediaPipe's compat module uses float64 and uint8).
    _float_dtype: ClassVar[type] = np.float32
    _quantized_dtype: ClassVar[type] = np.int8

    def _setup_outputs(self) -> None:
        """Head names from the metadata; probe runs refuse a model that outputs NaN or infinity."""
        assert self._interpreter is not None
        check_scores(self._interpreter, self._signature, self._name, labelled=True)
        meta = self._metadata
        names: list[str | None] = [None] * len(self._signature.outputs)
        if meta is not None and meta.heads:
            names = [head.name or None for head in meta.heads][:len(names)]
        elif meta is not None:
            names[0] = meta.head_name or None
        self._head_names = names + [None] * (len(self._signature.outputs) - len(names))

    @classmethod
    def create_from_model_path(cls, model_path: str | os.PathLike) -> ImageEmbedder:
        """An embedder in IMAGE mode with default options.

        Args:
            model_path: a .tflite file or a zoo name (``NAME[:PRECISION]``, its embedding file).

        Returns:
            The embedder.

        Raises:
            ModelNotFoundError: (a ``FileNotFoundError``) no such file or zoo model.
            ModelFileError: (a ``ValueError``) the file is not a usable image model.
        """
        return cls.create_from_options(ImageEmbedderOptions(model_path=model_path))

    @classmethod
    def create_from_options(cls, options: ImageEmbedderOptions) -> ImageEmbedder:
        """An embedder for ``options``.

        Args:
            options: the model (``base_options`` or ``model_path``) and settings.

        Returns:
            The embedder.

        Raises:
            ModelNotFoundError: (a ``FileNotFoundError``) no such model file.
            ModelFileError: (a ``ValueError``) the model does not work.
            DelegateError: (a ``RuntimeError``) an accelerator LiteRT does not offer here.
            ValueError: an invalid option.
        """
        return cls._create(options)

    @property
    def dimension(self) -> int:
        """Values in the first head's vector."""
        return int(np.prod(self._signature.outputs[0].shape[1:] or self._signature.outputs[0].shape))

    @property
    def head_names(self) -> list[str | None]:
        """The output heads' names from the metadata, in output order."""
        return list(self._head_names)

    def __repr__(self) -> str:
        spec = self._signature.input
        return (f"ImageEmbedder({self._name!r}, input={spec.dtype.name}{list(spec.shape)}, "
                f"dimension={self.dimension}, mode={self._mode.name}{', closed' if self.closed else ''})")

    # -- embedding ------------------------------------------------------------------------------

    def embed(self, image: ImageInput,
              image_processing_options: ImageProcessingOptions | None = None) -> EmbeddingResult:
        """Embed one image (IMAGE mode).

        Args:
            image: a path, bytes, PIL image, HxWx3 uint8 array or MediaPipe-style ``Image``.
            image_processing_options: region of interest and rotation.

        Returns:
            One :class:`Embedding` per head.

        Raises:
            ImageError: an unreadable image.
            ValueError: another running mode, or a region that does not fit.
        """
        return self._process_image(image, image_processing_options)

    def embed_for_video(self, image: ImageInput, timestamp_ms: int,
                        image_processing_options: ImageProcessingOptions | None = None) -> EmbeddingResult:
        """Embed one decoded video frame (VIDEO mode).

        Args:
            image: the frame (as for :meth:`embed`).
            timestamp_ms: the frame's time; must increase from call to call.
            image_processing_options: region of interest and rotation.

        Returns:
            The result, with ``timestamp_ms`` set.

        Raises:
            ImageError: an unreadable frame.
            ValueError: another running mode, a timestamp not after the previous one, a bad region.
        """
        return self._process_video(image, timestamp_ms, image_processing_options)

    def embed_async(self, image: ImageInput, timestamp_ms: int,
                    image_processing_options: ImageProcessingOptions | None = None) -> None:
        """Hand a camera frame to the worker and return at once (LIVE_STREAM mode).

        ``result_callback(result, image, timestamp_ms)`` gets each result from
        one worker thread in timestamp order; frames arriving while one is
        embedded are dropped except the newest (see :attr:`live_stream_stats`).

        Args:
            image: the frame (as for :meth:`embed`).
            timestamp_ms: the frame's time; must increase from call to call.
            image_processing_options: region of interest and rotation.

        Raises:
            ValueError: another running mode, a timestamp not after the previous one, bad options.
        """
        self._process_async(image, timestamp_ms, image_processing_options)

    def _vectors(self, raw: np.ndarray, index: int) -> np.ndarray:
        """float32 ``[N, D]`` of one output's raw ``[N, ...]`` values, L2-normalised if the options say."""
        spec = self._signature.outputs[index]
        values = dequantize(raw.reshape(len(raw), -1), spec.scale, spec.zero_point).astype(np.float32)
        return l2_normalized(values) if self._options.l2_normalize else values

    def _postprocess(self, raws: list[np.ndarray], inference_ms: float, timestamp_ms: int) -> EmbeddingResult:
        embeddings = []
        for i, raw in enumerate(raws):
            vector = self._vectors(raw.reshape(1, -1), i)[0]
            vector = (scalar_quantized(vector).view(self._quantized_dtype) if self._options.quantize
                      else vector.astype(self._float_dtype))
            embeddings.append(Embedding(vector, i, self._head_names[i]))
        return EmbeddingResult(embeddings, timestamp_ms, inference_ms)

    def _run(self, tensors: list[np.ndarray], timestamp_ms: int) -> EmbeddingResult:
        # The batch path: embed_tensors may have resized the input to N images (checked under the lock).
        raws, elapsed_ms = self._invoke_batch(tensors[0], "embed")
        return self._postprocess(raws, elapsed_ms, timestamp_ms)

    def embed_tensors(self, batch: np.ndarray) -> np.ndarray:
        """Embed ``N`` stacked :meth:`preprocess` tensors (``[N, H, W, C]``) in one invoke (IMAGE mode).

        Args:
            batch: the input tensors of ``N`` images, concatenated on the first axis
                (the input's dtype: float32, or uint8 for the int8 zoo files).

        Returns:
            float32 ``[N, D]``: the first head's vectors, L2-normalised when
            the options say (never quantized).

        Raises:
            RuntimeError: the embedder is closed.
            ValueError: another running mode, or ``batch`` is not ``[N, H, W, C]``.
            ModelFileError: the model fails to run.

        The interpreter's input is resized when ``N`` changes (about 0.1 s):
        keep ``N`` steady for speed.
        """
        self._check_mode(RunningMode.IMAGE)
        if len(batch) == 0:
            return np.zeros((0, self.dimension), np.float32)
        raws, _elapsed = self._invoke_batch(np.asarray(batch), "embed_tensors")
        return self._vectors(raws[0], 0)

    def embed_many(self, images: Iterable[ImageInput], workers: int = 2,
                   batch_size: int = DEFAULT_BATCH) -> Iterator[tuple[ImageInput, np.ndarray | Exception]]:
        """Embed a stream of images, yielding ``(image, vector)`` in input order (IMAGE mode).

        ``workers`` threads decode and resize ahead while batches of up to
        ``batch_size`` images run in one invoke. A bad image yields its
        :class:`~litecls.errors.ImageError` in place of the vector and the
        stream goes on.

        Args:
            images: paths, bytes, PIL images or arrays (anything :meth:`embed` takes).
            workers: preprocessing threads.
            batch_size: images per invoke.

        Yields:
            ``(image, float32 [D] vector)`` (L2-normalised when the options
            say), or ``(image, exception)``.

        Raises:
            ValueError: another running mode, or ``workers``/``batch_size`` below 1.
        """
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        pending: list[tuple[ImageInput, np.ndarray | Exception]] = []
        for image, prepared in self._map_images(images, workers, lambda tensor: tensor):
            pending.append((image, prepared))
            if sum(not isinstance(p, Exception) for _i, p in pending) >= batch_size:
                yield from self._flush(pending)
                pending = []
        yield from self._flush(pending)

    def _flush(self, pending: list[tuple[ImageInput, np.ndarray | Exception]]
               ) -> Iterator[tuple[ImageInput, np.ndarray | Exception]]:
        tensors = [p for _i, p in pending if not isinstance(p, Exception)]
        try:
            vectors = iter(self.embed_tensors(np.concatenate(tensors)) if tensors else ())
        except ModelFileError as exc:  # the model failed on this batch: say so for each of its images
            vectors = iter([exc] * len(tensors))
        for image, prepared in pending:
            yield image, prepared if isinstance(prepared, Exception) else next(vectors)

    @staticmethod
    def cosine_similarity(u: Embedding | np.ndarray, v: Embedding | np.ndarray) -> float:
        """Cosine similarity of two embeddings, as MediaPipe's ``ImageEmbedder.cosine_similarity``.

        Args:
            u: an :class:`Embedding` (or a vector).
            v: another.

        Returns:
            A value between -1 and 1.

        Raises:
            ValueError: different sizes, quantized against float, or a zero vector.
        """
        return cosine_similarity(u, v)
