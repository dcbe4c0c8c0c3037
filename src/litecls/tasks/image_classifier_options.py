"""Options of :class:`litecls.tasks.ImageClassifier`: the model, how it runs, what it reports.

Names follow MediaPipe Tasks (``BaseOptions``, ``RunningMode``,
``ImageClassifierOptions``); litecls adds preprocessing and labels settings
for models without metadata, and keeps its own defaults (top 5,
probabilities, centre crop). :mod:`litecls.compat.mediapipe` sets MediaPipe's.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litecls.processing.config import INTERPOLATIONS, RESIZE_POLICIES
from litecls.processing.image import ImageLimits

if TYPE_CHECKING:
    from litecls.processing.preprocess import Normalization

#: ``max_results`` when the options leave it unset (``None``).
DEFAULT_MAX_RESULTS = 5
#: Display-name locale when the options leave it unset.
DEFAULT_LOCALE = "en"


class RunningMode(enum.Enum):
    """How a task is fed (MediaPipe's ``VisionTaskRunningMode``).

    ``IMAGE``: independent images, :meth:`~litecls.tasks.ImageClassifier.classify`.
    ``VIDEO``: decoded frames with increasing timestamps, ``classify_for_video``.
    ``LIVE_STREAM``: camera frames, ``classify_async``; results go to the
    options' ``result_callback``, and frames that arrive while the model is
    busy are dropped (only the newest waits).
    """

    IMAGE = "IMAGE"
    VIDEO = "VIDEO"
    LIVE_STREAM = "LIVE_STREAM"


@dataclass
class BaseOptions:
    """The model and the accelerator (MediaPipe's ``BaseOptions``).

    Give ``model_asset_path`` (a .tflite file, or a zoo name in
    :mod:`litecls.tasks`) or ``model_asset_buffer`` (the file's bytes); the
    path wins when both are set, as in MediaPipe. ``delegate``:
    ``Delegate.CPU`` (and ``DEFAULT``/``None``) run LiteRT's CPU kernels with
    XNNPACK; ``Delegate.GPU`` raises :class:`litecls.errors.DelegateError`
    because the ``ai-edge-litert`` wheel's Interpreter has no GPU delegate.
    """

    class Delegate(enum.IntEnum):
        """Accelerators, with MediaPipe's names and values."""

        DEFAULT = 0
        CPU = 1
        GPU = 2

    model_asset_path: str | os.PathLike | None = None
    model_asset_buffer: bytes | None = None
    delegate: Delegate | None = None


def validate_vision_options(options: Any) -> None:
    """Check the settings every vision task's options share (model source, running mode, preprocessing).

    Args:
        options: an ImageClassifierOptions or ImageEmbedderOptions.

    Raises:
        ValueError: naming the first setting that cannot work.
    """
    base = options.base_options
    has_base = base is not None and (base.model_asset_path is not None
                                     or base.model_asset_buffer is not None)
    if options.model_path is not None and base is not None:
        raise ValueError("give the model as model_path or as base_options, not both")
    if options.model_path is None and not has_base:
        raise ValueError("no model: set model_path, or base_options with model_asset_path or "
                         "model_asset_buffer")
    if base is not None and base.model_asset_buffer is not None and not isinstance(
            base.model_asset_buffer, (bytes, bytearray, memoryview)):
        raise ValueError(f"model_asset_buffer must be bytes, "
                         f"got {type(base.model_asset_buffer).__name__}")
    if not isinstance(options.running_mode, RunningMode):
        raise ValueError(f"running_mode must be a RunningMode, got {options.running_mode!r}")
    if options.running_mode == RunningMode.LIVE_STREAM:
        if options.result_callback is None:
            raise ValueError("The vision task is in live stream mode, a user-defined result "
                             "callback must be provided.")
        if not callable(options.result_callback):
            raise ValueError(f"result_callback must be callable, got {options.result_callback!r}")
    elif options.result_callback is not None:
        raise ValueError("The vision task is in image or video mode, a user-defined result "
                         "callback should not be provided.")
    threads = options.num_threads
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"num_threads must be a positive integer or None, got {threads!r}")
    if options.resize_policy is not None and options.resize_policy not in RESIZE_POLICIES:
        raise ValueError(f"resize_policy must be one of {RESIZE_POLICIES}, got {options.resize_policy!r}")
    if options.crop_pct is not None and not 0.0 < options.crop_pct <= 1.0:
        raise ValueError(f"crop_pct must be in (0, 1], got {options.crop_pct}")
    if options.interpolation is not None and options.interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {options.interpolation!r}")


ResultCallback = Callable[[Any, Any, int], None]


@dataclass
class ImageClassifierOptions:
    """Settings of an :class:`~litecls.tasks.ImageClassifier` (defaults: see its module).

    Model: ``model_path`` (a .tflite file or zoo name) or ``base_options``
    (MediaPipe's way: path, bytes, delegate); exactly one. ``running_mode``
    and ``result_callback`` (required in LIVE_STREAM mode, refused in the
    others) as in MediaPipe.

    ``max_results``: categories per result, -1 for all, ``None`` for the
    default (5). ``score_threshold``: drop categories scoring under it;
    ``None``: the model metadata's default threshold, else 0.
    ``category_allowlist`` / ``category_denylist``: category (or display)
    names to keep / drop; an empty list means no filter; only one may be
    non-empty. ``display_names_locale``: ``None`` for "en". ``labels``,
    ``mean``, ``std``: for models without metadata (they override metadata).
    ``resize_policy``: "crop" (keep aspect ratio, centre crop of
    ``crop_pct``) or "squash". ``raw_scores``: report the model's scores as
    they are (dequantized) instead of probabilities (softmax of logits,
    renormalised quantized outputs). ``normalize_quantized_input``: apply
    the metadata's mean/std before quantizing a uint8/int8 input (litecls);
    False feeds raw pixels (uint8; int8 as pixel - 128) as MediaPipe and the
    Task Library do. ``cache_dir``: where zoo models are built.
    ``image_limits``: the memory budget of one image (width, height, pixels,
    aspect ratio, memory; default :data:`litecls.processing.image.DEFAULT_LIMITS`).
    """

    model_path: str | os.PathLike | None = None
    max_results: int | None = DEFAULT_MAX_RESULTS
    score_threshold: float | None = None
    category_allowlist: list[str] | None = None
    category_denylist: list[str] | None = None
    num_threads: int | None = None
    display_names_locale: str | None = DEFAULT_LOCALE
    labels: Sequence[str] | str | os.PathLike | None = None
    mean: Normalization | None = None
    std: Normalization | None = None
    resize_policy: str | None = None
    crop_pct: float | None = None
    interpolation: str | None = None
    ambiguity_min_score: float = 0.5
    ambiguity_margin: float = 0.1
    cache_dir: str | os.PathLike | None = None
    base_options: BaseOptions | None = None
    running_mode: RunningMode = RunningMode.IMAGE
    result_callback: ResultCallback | None = None
    raw_scores: bool = False
    normalize_quantized_input: bool = True
    image_limits: ImageLimits | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every setting.

        Raises:
            ValueError: naming the first setting that cannot work.
        """
        validate_vision_options(self)
        if self.category_allowlist and self.category_denylist:
            raise ValueError("category_allowlist and category_denylist are mutually exclusive: set only one")
        for name in ("category_allowlist", "category_denylist"):
            if isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a list of names, not a string")
        if self.max_results is not None and (isinstance(self.max_results, bool) or not isinstance(
                self.max_results, int) or self.max_results == 0 or self.max_results < -1):
            raise ValueError(f"max_results must be positive, or -1 for all categories; "
                             f"got {self.max_results!r}")
        if self.score_threshold is not None and not (
                isinstance(self.score_threshold, (int, float)) and not isinstance(self.score_threshold, bool)
                and (self.raw_scores or 0.0 <= self.score_threshold <= 1.0)):
            raise ValueError(f"score_threshold must be between 0 and 1, got {self.score_threshold!r}")
        if not 0.0 <= self.ambiguity_min_score <= 1.0 or not 0.0 <= self.ambiguity_margin <= 1.0:
            raise ValueError("ambiguity_min_score and ambiguity_margin must be between 0 and 1")
