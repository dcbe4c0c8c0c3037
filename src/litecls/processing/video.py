"""Video decoding with PyAV: frames of a video file, sampled at a chosen rate, as upright RGB arrays.

Policy (the video counterpart of :mod:`litecls.processing.image`):

* Every frame is decoded (inter-frame codecs need the frames in between),
  but only the sampled ones are converted to RGB, which is the costly step.
* Sampling at ``fps`` keeps the first frame at or after each multiple of
  ``1 / fps`` seconds from the start of the stream, so timestamps are
  0, 0.5, 1.0... for ``fps=2`` whatever the video's own frame rate.
* The display rotation of phone videos is applied, as EXIF orientation is
  for photos.
* With ``min_side``, large frames are scaled down by FFmpeg's area filter
  while converting to RGB, to no less than ``min_side`` pixels on the short
  side (the caller passes twice the model's input size, as for JPEG DCT
  scaling), so a 4K frame costs about as much as a small one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from litecls.errors import ImageError, VideoError

#: File name extensions treated as videos by ``litecls classify``.
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"})


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a file's first video stream.

    ``width``/``height`` are as displayed (after rotation). ``fps`` is the
    average frame rate, ``duration`` in seconds and ``frames`` the frame
    count; each is ``None`` when the container does not say.
    """

    path: str
    codec: str
    width: int
    height: int
    fps: float | None
    duration: float | None
    frames: int | None
    rotation: int


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame: its number in decoding order, time in seconds from the start, RGB pixels."""

    index: int
    timestamp: float
    image: np.ndarray


def is_video(path: str | os.PathLike) -> bool:
    """True when the file name ends in one of :data:`VIDEO_SUFFIXES` (case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _open(path: str | os.PathLike):  # -> tuple[av.container.InputContainer, av.VideoStream]
    """Open ``path`` and its first video stream, or raise :class:`VideoError` saying why not."""
    from litecls.extras import require_extra

    require_extra("video")
    import av

    name = str(path)
    file = Path(path)
    if not file.exists():
        raise VideoError(f"{name}: no such file")
    if file.is_dir():
        raise VideoError(f"{name}: is a directory, not a video")
    if file.stat().st_size == 0:
        raise VideoError(f"{name}: empty file")
    try:
        container = av.open(name, mode="r")
    except OSError as exc:  # before FFmpegError: PyAV's permission error is both
        raise VideoError(f"{name}: cannot read video: {_reason(exc)}") from None
    except av.error.FFmpegError as exc:
        raise VideoError(f"{name}: {_unreadable(file, exc)}") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{name}: has no video stream")
    return container, container.streams.video[0]


def _unreadable(file: Path, exc: Exception) -> str:
    """Why FFmpeg could not open ``file``, naming the common case of a cut-off MP4."""
    with file.open("rb") as stream:
        head = stream.read(12)
    if head[4:8] == b"ftyp":
        # MP4 and QuickTime write their index (moov) last: a copy cut short has none.
        return f"truncated or damaged MP4/MOV file: its index cannot be read ({_reason(exc)})"
    return f"not a video file FFmpeg can read ({_reason(exc)})"


def _reason(exc: Exception) -> str:
    """FFmpeg's own words without the errno and file name PyAV adds around them."""
    strerror = getattr(exc, "strerror", None)
    return str(strerror) if strerror else str(exc)


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Describe the first video stream of ``path`` (decodes one frame for the rotation)."""
    import av

    container, stream = _open(path)
    with container:
        codec = stream.codec_context.name
        fps = float(stream.average_rate) if stream.average_rate else None
        if stream.duration is not None and stream.time_base is not None:
            duration: float | None = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = None
        frames = int(stream.frames) or None
        try:
            first = next(container.decode(stream), None)
        except av.error.FFmpegError as exc:
            raise VideoError(f"{path}: cannot decode the first frame ({_reason(exc)})") from None
        if first is None:
            raise VideoError(f"{path}: the video stream holds no frames")
        rotation = _normalise_rotation(first.rotation)
        width, height = (first.height, first.width) if rotation in (90, 270) else (first.width, first.height)
    return VideoInfo(str(path), codec, width, height, fps, duration, frames, rotation)


def _normalise_rotation(degrees: float | None) -> int:
    """The display rotation as 0, 90, 180 or 270 degrees counter-clockwise."""
    if not degrees:
        return 0
    return round(degrees / 90.0) % 4 * 90


def _scaled_size(width: int, height: int, min_side: int | None) -> tuple[int, int]:
    """Frame size after scaling the short side down to ``min_side`` (never up)."""
    if min_side is None or min(width, height) <= min_side:
        return width, height
    scale = min_side / min(width, height)
    return max(min_side, round(width * scale)), max(min_side, round(height * scale))


def frame_to_rgb(frame, min_side: int | None = None) -> np.ndarray:  # frame: av.VideoFrame
    """A decoded frame as an upright ``HxWx3`` uint8 RGB array, scaled down to ``min_side`` if given."""
    from av.video.reformatter import Interpolation

    from litecls.processing.image import DEFAULT_LIMITS

    DEFAULT_LIMITS.check_size("video frame", frame.width, frame.height)  # the memory budget of an image
    width, height = _scaled_size(frame.width, frame.height, min_side)
    # AREA averages the source pixels each output pixel covers: anti-aliased like PIL's reduce.
    array = frame.reformat(width=width, height=height, format="rgb24",
                           interpolation=Interpolation.AREA).to_ndarray()
    rotation = _normalise_rotation(frame.rotation)
    if rotation:
        # The display matrix turns the stored frame counter-clockwise; np.rot90 turns the same way.
        array = np.ascontiguousarray(np.rot90(array, k=rotation // 90))
    return array


def read_frames(path: str | os.PathLike, fps: float | None = 1.0,
                min_side: int | None = None) -> Iterator[VideoFrame]:
    """Decode ``path`` and yield frames sampled at ``fps`` (every frame for ``None``).

    Timestamps are seconds from the start of the stream. ``min_side``: see
    :func:`frame_to_rgb`. Raises :class:`VideoError` for a file that cannot be
    opened or decoded; a stream that breaks off or ends before the frame
    count its header states raises it too, after the frames it had.
    """
    import av

    if fps is not None and not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"fps must be a positive number or None for every frame, got {fps!r}")
    container, stream = _open(path)
    # Let FFmpeg pick its decoding threads: frame threading overlaps decoding with our work.
    stream.thread_type = "AUTO"
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    rate = float(stream.average_rate) if stream.average_rate else None
    interval = 1.0 / fps if fps else 0.0
    next_time = 0.0
    index = -1
    try:
        with container:
            for index, frame in enumerate(container.decode(stream)):
                if frame.time is not None:
                    timestamp = frame.time - start
                elif rate:
                    timestamp = index / rate
                else:
                    timestamp = float(index)
                # A tolerance of a microsecond absorbs pts rounding (0.4999999 for 0.5).
                if fps is not None and timestamp < next_time - 1e-6:
                    continue
                if fps is not None:
                    next_time = (math.floor(timestamp / interval + 1e-6) + 1) * interval
                yield VideoFrame(index, timestamp, frame_to_rgb(frame, min_side))
    except av.error.FFmpegError as exc:
        raise VideoError(f"{path}: corrupt video data after frame {index + 1} ({_reason(exc)})") from None
    except VideoError:
        raise
    except ImageError as exc:  # a frame over the image limits
        raise VideoError(f"{path}: {str(exc).removeprefix('video frame: ')}") from None
    except (ValueError, RuntimeError, MemoryError, OSError) as exc:  # a frame PyAV cannot convert
        detail = " ".join(str(exc).split())[:300]
        raise VideoError(f"{path}: cannot convert frame {index + 1} "
                         f"({type(exc).__name__}: {detail})") from None
    if index < 0:
        raise VideoError(f"{path}: the video stream holds no frames")
    stated = int(stream.frames or 0)
    # FFmpeg ends a cut-off file quietly; the frame count in the header (AVI, MP4) tells.
    if stated and index + 1 < stated:
        raise VideoError(f"{path}: truncated: the stream stops after {index + 1} of the {stated} "
                         f"frames its header states")
