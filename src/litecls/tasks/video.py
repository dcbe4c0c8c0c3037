"""Classify the frames of a video file at a chosen rate, and say whether that keeps up with real time.

::

    with ImageClassifier.create_from_model_path("efficientnet_lite0") as classifier:
        for frame in classify_video(classifier, "clip.mp4", fps=2):
            print(f"{frame.timestamp:6.2f} s", frame.result.top.category_name)

Decoding runs in a background thread (FFmpeg releases the GIL), resizing in
:meth:`ImageClassifier.classify_many`'s workers, and inference in the
caller's thread, so the three overlap.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from litecls.processing.video import VideoError, VideoFrame, read_frames
from litecls.tasks.image_classifier import ClassificationResult, ImageClassifier

#: Decoded frames waiting for the classifier; bounds memory for 4K video.
_PREFETCH = 4
_DONE = object()


@dataclass(frozen=True)
class FrameClassification:
    """The result for one video frame: its number in decoding order and time in seconds."""

    index: int
    timestamp: float
    result: ClassificationResult


@dataclass(frozen=True)
class VideoThroughput:
    """How fast frames were decoded and classified, against the video's own frame rate.

    ``frames`` classified in ``seconds`` of wall time (decoding included);
    ``video_fps`` is the stream's frame rate (``None`` when unknown) and
    ``video_seconds`` the span of video covered.
    """

    frames: int
    seconds: float
    video_fps: float | None
    video_seconds: float

    @property
    def fps(self) -> float:
        """Frames classified per second of wall time."""
        return self.frames / self.seconds if self.seconds > 0 else math.inf

    @property
    def ms_per_frame(self) -> float:
        """Wall time per classified frame, in milliseconds."""
        return 1000 * self.seconds / self.frames if self.frames else math.nan

    @property
    def budget_ms(self) -> float | None:
        """Time one frame may take to keep up with every frame of the video (33.3 ms at 30 fps)."""
        return 1000 / self.video_fps if self.video_fps else None

    @property
    def realtime(self) -> bool | None:
        """True when a frame took less than :attr:`budget_ms`; ``None`` when the frame rate is unknown."""
        budget = self.budget_ms
        return None if budget is None or not self.frames else self.ms_per_frame < budget

    @property
    def speed(self) -> float:
        """Seconds of video processed per second of wall time (above 1: faster than playback)."""
        return self.video_seconds / self.seconds if self.seconds > 0 else math.inf


def _prefetched(frames: Iterator[VideoFrame], depth: int = _PREFETCH) -> Iterator[VideoFrame]:
    """Run ``frames`` in a background thread, ``depth`` items ahead; errors re-raised here.

    Closing the returned generator early stops the thread at its next frame.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for frame in frames:
                while not stop.is_set():
                    try:
                        slots.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            slots.put(exc)
        finally:
            if stop.is_set():
                frames.close()  # type: ignore[attr-defined]  # closes the container in this thread

    thread = threading.Thread(target=produce, name="litecls-video-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                slots.get(timeout=0.1)
        thread.join()


def classify_video(classifier: ImageClassifier, path: str | os.PathLike, fps: float | None = 1.0,
                   workers: int = 1) -> Iterator[FrameClassification]:
    """Classify the frames of ``path`` sampled at ``fps`` per second of video (every frame for ``None``).

    Frames are scaled down while decoding to twice the model's input size
    (as large JPEGs are), then resized and cropped like any image.

    Args:
        classifier: an IMAGE-mode classifier.
        path: the video file.
        fps: frames to classify per second of video; ``None`` for every frame.
        workers: threads resizing frames while the classifier runs (as in
            :meth:`ImageClassifier.classify_many`).

    Yields:
        One :class:`FrameClassification` per sampled frame, in order.

    Raises:
        VideoError: (an ``ImageError``, so a ``ValueError``) a file that cannot be
            opened or decoded, or a frame that cannot be resized, raised after the
            frames read before the damage.
        ValueError: ``fps`` not a positive number, a classifier not in IMAGE mode, or
            ``workers`` below 1.
        ImportError: PyAV (``litecls[video]``) is not installed.
        RuntimeError: the classifier is closed.
    """
    height, width = classifier.signature.input.size
    _, crop_pct, _ = classifier.resize
    min_side = math.ceil(2 * max(height, width) / crop_pct)
    pending: deque[VideoFrame] = deque()
    frames = _prefetched(read_frames(path, fps, min_side))

    def images() -> Iterator:
        for frame in frames:
            pending.append(frame)
            yield frame.image

    results = classifier.classify_many(images(), workers=workers)
    try:
        for _image, result in results:
            frame = pending.popleft()
            if isinstance(result, Exception):  # the frame could not be resized: this video stops here
                raise VideoError(f"{path}: frame {frame.index}: {result}") from None
            yield FrameClassification(frame.index, frame.timestamp, result)
    finally:
        # Stopped early: end the resizing workers and the decoding thread now, not at garbage collection.
        results.close()
        frames.close()
