"""Dynamic batching: concurrent requests for one model gathered into one batched invoke.

Each model has one :class:`Batcher`: request handlers decode and resize
their images in a thread pool, then :meth:`Batcher.classify` queues the input
tensor and awaits its result. One worker task per model takes what is queued
(up to ``max_batch``), waits at most ``max_wait_ms`` for more *only while
other requests for the model are still decoding* (so a lone request never
waits), and runs the batch on the model's single inference thread: an
interpreter never runs two invokes at once.

A batch of N runs as power-of-two chunks (13 = 8 + 4 + 1), each on an
interpreter already shaped for that size (re-shaping an interpreter costs
about 0.1 s, far more than it saves), so at most log2(max_batch) + 1
interpreters exist per model and no padding is computed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from litecls.tasks import ClassificationResult, ImageClassifier


def chunk_sizes(n: int, max_batch: int) -> list[int]:
    """Split ``n`` images into power-of-two batches no larger than ``max_batch``, largest first.

    Args:
        n: images to run.
        max_batch: the largest batch allowed (need not be a power of two).
    Returns:
        Sizes summing to ``n``, e.g. ``chunk_sizes(13, 8) == [8, 4, 1]``.
    """
    top = 1
    while top * 2 <= max_batch:
        top *= 2
    sizes = []
    while n > 0:
        size = top
        while size > n:
            size //= 2
        sizes.append(size)
        n -= size
    return sizes


class Batcher:
    """Gathers one model's queued input tensors into batched invokes.

    Args:
        classifier: the model's classifier for batches of one.
        make_classifier: builds another classifier of the same model, for a larger batch size.
        max_batch: most images per invoke (1: no batching).
        max_wait_ms: longest wait for more images while requests are still decoding.
        on_batch: called with each batch's size (metrics).
    """

    def __init__(self, classifier: ImageClassifier, make_classifier: Callable[[], ImageClassifier],
                 max_batch: int = 8, max_wait_ms: float = 2.0,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self._classifiers: dict[int, ImageClassifier] = {1: classifier}
        self._make = make_classifier
        self._max_batch = max_batch
        self._max_wait = max_wait_ms / 1000
        self._on_batch = on_batch
        self._items: list[tuple[np.ndarray, asyncio.Future]] = []
        self._event = asyncio.Event()
        self._decoding = 0
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="litecls-invoke")
        self._worker: asyncio.Task | None = None
        #: called on the inference thread once the batcher's classifiers are closed
        self.on_close: Callable[[], None] | None = None

    @property
    def batching(self) -> bool:
        """False when ``max_batch`` is 1: images then run where decoded (:meth:`classify_now`)."""
        return self._max_batch > 1

    def classify_now(self, tensor: np.ndarray) -> ClassificationResult:
        """Run one tensor on the calling thread (the classifier's lock keeps invokes one at a time).

        Without batching this saves a hand-over to the inference thread per image.
        """
        if self._on_batch is not None:
            self._on_batch(1)
        return self._classifiers[1].classify_tensor(tensor)

    @property
    def queued(self) -> int:
        """Images waiting for the interpreter."""
        return len(self._items)

    @contextlib.contextmanager
    def decoding(self):
        """Mark a request as decoding images for this model (the worker may wait for it)."""
        self._decoding += 1
        try:
            yield
        finally:
            self._decoding -= 1
            self._event.set()

    async def classify(self, tensor: np.ndarray) -> ClassificationResult:
        """Queue one ``[1, H, W, C]`` input tensor and return its result.

        Raises:
            RuntimeError: the batcher was closed (its model was unloaded).
        """
        if self._closed:
            raise RuntimeError("model unloaded")
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        self._items.append((tensor, future))
        self._event.set()
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._items:
                self._event.clear()
                if self._closed:
                    return
                await self._event.wait()
                continue
            if len(self._items) < self._max_batch and self._decoding and self._max_wait > 0:
                deadline = loop.time() + self._max_wait
                while len(self._items) < self._max_batch and self._decoding:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    self._event.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._event.wait(), remaining)
            taken, self._items = self._items[:self._max_batch], self._items[self._max_batch:]
            tensors = [tensor for tensor, _ in taken]
            try:
                results = await loop.run_in_executor(self._executor, self._invoke, tensors)
            except Exception as exc:  # a runtime failure fails this batch's requests, not the worker
                for _, future in taken:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(taken, results, strict=True):
                if not future.done():  # the client may have gone away
                    future.set_result(result)

    async def run_alone(self, function: Callable[..., object], *args: object) -> object:
        """Run ``function(*args)`` on this model's inference thread, between batches."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def _invoke(self, tensors: list[np.ndarray]) -> list[ClassificationResult]:
        """Run ``tensors`` as power-of-two batches on the inference thread."""
        if self._on_batch is not None:
            self._on_batch(len(tensors))
        results: list[ClassificationResult] = []
        start = 0
        for size in chunk_sizes(len(tensors), self._max_batch):
            part = tensors[start:start + size]
            start += size
            if size == 1:
                results.append(self._classifiers[1].classify_tensor(part[0]))
                continue
            classifier = self._classifiers.get(size)
            if classifier is None:
                classifier = self._classifiers[size] = self._make()
            results += classifier.classify_tensors(np.concatenate(part))
        return results

    async def aclose(self) -> None:
        """Finish the queued images, then release the interpreters."""
        self._closed = True
        self._event.set()
        if self._worker is not None:
            await self._worker
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close_classifiers)
        self._executor.shutdown(wait=True)

    def _close_classifiers(self) -> None:
        for classifier in self._classifiers.values():
            classifier.close()
        if self.on_close is not None:
            self.on_close()
