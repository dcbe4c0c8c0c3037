"""Where a task's model and images come from: zoo names, metadata, delegates, MediaPipe-style ``Image``s."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from litecls.errors import (
    DelegateError,
    ExportError,
    MetadataError,
    ModelFileError,
    ModelNotFoundError,
    UnknownModelError,
)
from litecls.metadata import PROCESSING_FILE, ModelMetadata, read_metadata
from litecls.models.registry import ModelConfig, get_config, list_models
from litecls.processing.config import check_resize_settings
from litecls.processing.image import ImageInput
from litecls.tasks.image_classifier_options import BaseOptions

_log = logging.getLogger("litecls.tasks")


def resolve_model(model_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                  task: str = "classifier") -> tuple[Path, ModelConfig | None]:
    """``(file, zoo config or None)`` for a model file or a zoo reference like ``"mobilenet_v2:float32"``.

    A name that is not an existing file, has no directory part and no
    ``.tflite`` suffix is looked up in the zoo and built on first use.

    Args:
        model_path: a .tflite path or a zoo name ``NAME[:PRECISION]``.
        cache_dir: the zoo cache (default: ``$LITECLS_CACHE`` or the XDG cache).
        task: "classifier", or "embedding" for the zoo's feature-vector file
            (:func:`litecls.models.zoo.build_embedding`).

    Returns:
        The file and, for a zoo name, its config.

    Raises:
        ModelNotFoundError: not a file and not a zoo model.
        ModelFileError: a zoo name with an unknown precision.
    """
    text = os.fspath(model_path)
    path = Path(text)
    looks_like_ref = ("/" not in text and os.sep not in text and not text.endswith(".tflite")
                      and not path.exists())
    if not looks_like_ref:
        return path, None
    from litecls.models.zoo import build, build_embedding, parse_model_ref

    try:
        name, precision = parse_model_ref(text)
    except UnknownModelError:
        raise ModelNotFoundError(f"{text}: no such model file, and not a zoo model "
                                 f"(zoo models: {', '.join(list_models())})") from None
    except ExportError as exc:
        raise ModelFileError(f"{text}: {exc}") from None
    builder = build_embedding if task == "embedding" else build
    return builder(name, precision, cache=cache_dir), get_config(name)


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


def as_input(image: object) -> ImageInput:
    """A MediaPipe-style ``Image`` (anything with ``numpy_view()``) as its array; other inputs as they are."""
    if not isinstance(image, np.ndarray) and callable(getattr(image, "numpy_view", None)):
        return np.asarray(image.numpy_view())  # type: ignore[union-attr]
    return image  # type: ignore[return-value]



def read_task_metadata(data: bytes, name: str, options: Any, float_input: bool,
                       needs_labels: bool) -> ModelMetadata | None:
    """A model's metadata for a task; without it only where nothing it would give is needed.

    Corrupt metadata, or a label file it names but the model lacks, is an
    error unless the options give what it would have given: labels (for
    a task that needs them), and mean/std for a float input (wrong
    normalisation gives wrong answers silently). A missing processing
    file, or resize settings that cannot work, fall back to the defaults.

    Args:
        data: the .tflite file's bytes.
        name: the model's name in messages.
        options: the task's options (``labels``, if it has them, ``mean`` and ``std`` are read).
        float_input: the model's input is float32.
        needs_labels: the task needs labels (a classifier, not an embedder).

    Returns:
        The metadata, or ``None`` when the model has none (or unreadable metadata the options replace).

    Raises:
        MetadataError: (a ``ValueError``) unreadable metadata, or a missing label file,
            that the options do not make up for.
    """
    given_labels = getattr(options, "labels", None) is not None
    try:
        meta = read_metadata(data)
    except MetadataError as exc:
        needed = ["labels"] if needs_labels and not given_labels else []
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
    labels_missing = needs_labels and any(f != PROCESSING_FILE for f in meta.missing_files)
    if labels_missing and not given_labels:
        raise MetadataError(f"{name}: the metadata names {missing} but the model does not carry "
                            "(damaged or stripped file?); give labels in the options to use it anyway")
    _log.warning("%s: the metadata names %s but the model does not carry; using %s", name, missing,
                 "the options' labels" if labels_missing else "default resizing")
    return meta
