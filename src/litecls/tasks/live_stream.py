"""LIVE_STREAM mode of a vision task: one worker thread, one frame in flight, at most one waiting."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from litecls.processing.image import ImageInput
from litecls.processing.region import ImageProcessingOptions

_log = logging.getLogger("litecls.tasks")


@dataclass
class LiveStreamStats:
    """What happened to the frames given to a task's ``*_async`` method.

    ``classified`` counts the frames processed (classified or embedded).
    """

    submitted: int = 0
    classified: int = 0
    dropped: int = 0
    failed: int = 0


class LiveStream:
    """Feed a task's frames to its ``_run`` from one worker; the newest waiting frame replaces older ones."""

    def __init__(self, task: Any, callback: Callable) -> None:
        # A weak reference: a task dropped without close() is collected; its __del__ ends the worker.
        self._task = weakref.ref(task)
        self._what = type(task).__name__
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
        """Queue a frame (copying an array, so the caller may reuse its buffer); checks its timestamp."""
        kept = image.copy() if isinstance(image, np.ndarray) else image
        with self._cond:
            task = None if self._closing else self._task()
            if task is None:
                raise RuntimeError(f"this {self._what} is closed; create a new one")
            task._check_timestamp(timestamp_ms)
            self.stats.submitted += 1
            frame = (image, kept, int(timestamp_ms), region)
            if not self._busy:
                self._busy, self._current = True, frame
                self._cond.notify()
            else:
                if self._waiting is not None:
                    self.stats.dropped += 1
                self._waiting = frame

    def _process(self, kept: ImageInput, timestamp_ms: int, region: ImageProcessingOptions | None) -> Any:
        task = self._task()
        try:
            if task is None:
                raise RuntimeError(f"the {self._what} was garbage-collected")
            return task._run([task.preprocess(kept, region)], timestamp_ms)
        except Exception as exc:  # a bad frame must not stop the stream
            _log.error("live stream frame at %d ms not processed: %s", timestamp_ms, exc)
            return None
        finally:
            del task  # hold no reference while idle

    def _work(self) -> None:
        while True:
            with self._cond:
                while self._current is None and not self._closing:
                    self._cond.wait()
                if self._current is None:
                    return
                original, kept, timestamp_ms, region = self._current
            result = self._process(kept, timestamp_ms, region)
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
        """Stop taking frames, drop a waiting one, and wait for the one in flight and its callback."""
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
