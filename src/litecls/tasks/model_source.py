"""Where a task's model and images come from: zoo names, delegates, MediaPipe-style ``Image`` objects."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from litecls.errors import (
    DelegateError,
    ExportError,
    ModelFileError,
    ModelNotFoundError,
    UnknownModelError,
)
from litecls.models.registry import ModelConfig, get_config, list_models
from litecls.processing.image import ImageInput
from litecls.tasks.image_classifier_options import BaseOptions


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

