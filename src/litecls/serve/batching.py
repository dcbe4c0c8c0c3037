"""Dynamic batching: concurrent requests for one model gathered into one batched invoke.

Each model has one :class:`Batcher` and one inference thread. Decoding
threads queue input tensors with :meth:`Batcher.submit` (event-loop code
awaits :meth:`Batcher.classify`); the inference thread takes what is queued
(up to ``max_batch``), waits at most ``max_wait_ms`` for more *only while
other requests for the model are still decoding* (so a lone request never
waits), runs the batch and resolves each image's future: an interpreter never
runs two invokes at once, and the next batch never waits for the event loop
(which may be busy answering requests, or refusing them with 503).

A batch of N runs as power-of-two chunks (13 = 8 + 4 + 1), each on an
interpreter already shaped for that size (re-shaping an interpreter costs
about 0.1 s, far more than it saves), so at most log2(max_batch) + 1
interpreters exist per model and no padding is computed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, InvalidStateError

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
    """Gathers one model's queued input tensors into batched invokes on its inference thread.

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
        #: queued work: (tensor, future, may wait for more) for images, (callable, future, False) to run alone
        self._items: list[tuple[np.ndarray | Callable[[], object], Future, bool]] = []
        self._ready = threading.Condition()
        self._decoding = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="litecls-invoke", daemon=True)
        self._thread.start()
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
    def decoding(self) -> Iterator[None]:
        """Mark a request as decoding images for this model (the inference thread may wait for it)."""
        with self._ready:
            self._decoding += 1
        try:
            yield
        finally:
            with self._ready:
                self._decoding -= 1
                self._ready.notify()

    def submit(self, tensor: np.ndarray | Callable[[], object], wait: bool = True) -> Future:
        """Queue one ``[1, H, W, C]`` input tensor (or a callable to run alone); from any thread.

        Args:
            tensor: the image's input tensor, or a callable to run alone between batches.
            wait: whether a batch led by this image may wait (``max_wait_ms``) for more images;
                a large photo's does not (the next one takes longer to decode than the wait).
        Returns:
            A future of the :class:`ClassificationResult` (or of the callable's value).
        Raises:
            RuntimeError: the batcher was closed (its model was unloaded).
        """
        future: Future = Future()
        with self._ready:
            if self._closed:
                raise RuntimeError("model unloaded")
            self._items.append((tensor, future, wait and not callable(tensor)))
            self._ready.notify()
        return future

    async def classify(self, tensor: np.ndarray) -> ClassificationResult:
        """Queue one ``[1, H, W, C]`` input tensor and await its result (event-loop side of :meth:`submit`).

        Raises:
            RuntimeError: the batcher was closed (its model was unloaded).
        """
        return await asyncio.wrap_future(self.submit(tensor))

    async def run_alone(self, function: Callable[..., object], *args: object) -> object:
        """Run ``function(*args)`` on this model's inference thread, between batches."""
        return await asyncio.wrap_future(self.submit(lambda: function(*args)))

    def _take(self) -> list[tuple[np.ndarray | Callable[[], object], Future, bool]] | None:
        """The next batch of tensors, or one callable (None once closed and drained); holds the lock."""
        with self._ready:
            while not self._items:
                if self._closed:
                    return None
                self._ready.wait()
            if callable(self._items[0][0]):
                return [self._items.pop(0)]
            may_wait = self._items[0][2] and self._max_wait > 0
            if may_wait and len(self._items) < self._max_batch and self._decoding:
                deadline = time.monotonic() + self._max_wait
                while len(self._items) < self._max_batch and self._decoding:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._ready.wait(remaining):
                        break
            count = 0
            while (count < min(self._max_batch, len(self._items))
                   and not callable(self._items[count][0])):
                count += 1
            taken, self._items = self._items[:count], self._items[count:]
            return taken

    def _run(self) -> None:
        """The inference thread: batches until closed and drained, then release the interpreters."""
        while (taken := self._take()) is not None:
            taken = [item for item in taken if not item[1].cancelled()]  # the client went away
            if not taken:
                continue
            try:
                if callable(taken[0][0]):
                    results = [taken[0][0]()]
                else:
                    results = self._invoke([item[0] for item in taken])
            except Exception as exc:  # a runtime failure fails this batch's requests, not the thread
                for item in taken:
                    with contextlib.suppress(InvalidStateError):  # cancelled meanwhile
                        item[1].set_exception(exc)
                continue
            for item, result in zip(taken, results, strict=True):
                with contextlib.suppress(InvalidStateError):
                    item[1].set_result(result)
        for classifier in self._classifiers.values():
            classifier.close()
        if self.on_close is not None:
            self.on_close()

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
        """Finish the queued images, then release the interpreters (on the inference thread)."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        await asyncio.to_thread(self._thread.join)
