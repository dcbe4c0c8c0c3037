"""Export a PyTorch classifier to a deployable .tflite: convert, quantize, add metadata."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np

from litecls.errors import ExportError
from litecls.export.spec import ExportSpec
from litecls.metadata import ModelMetadata, write_metadata
from litecls.models.registry import PRECISIONS

if TYPE_CHECKING:
    from torch import nn


def spec_metadata(spec: ExportSpec, precision: str) -> ModelMetadata:
    """The metadata litecls writes for ``spec`` at ``precision``.

    Args:
        spec: the export spec.
        precision: the file's precision (named in the description).

    Returns:
        The metadata.
    """
    mean, std = spec.metadata_normalization()
    return ModelMetadata(
        name=spec.name, description=f"{spec.description} Precision: {precision}.".strip(),
        version=spec.version, author=spec.author, license=spec.license,
        mean=[mean], std=[std], color_space="RGB" if spec.channels == 3 else "GRAYSCALE",
        labels=list(spec.labels), display_names=dict(spec.display_names),
        processing=spec.processing.resize_settings())


def export_tflite(model: nn.Module | None, spec: ExportSpec, precision: str = "float32",
                  calibration: Callable[[], Iterable[np.ndarray]] | None = None,
                  float_model: bytes | None = None) -> bytes:
    """Return the bytes of a .tflite for ``model`` at ``precision``, with metadata.

    What the converters print goes to the ``litecls.export`` logger (shown on failure).

    Args:
        model: the PyTorch classifier (NCHW logits); ``None`` with ``float_model``.
        spec: its input, normalisation and metadata.
        precision: "float32", "float16", "dynamic" or "int8".
        calibration: returns uint8 NHWC images of the input size; needed for
            ``int8``, used by ``dynamic`` for GPTQ weight rounding when given.
        float_model: an already converted float32 file to start from.

    Returns:
        The file's bytes.

    Raises:
        ExportError: an unknown precision, no model, int8 without calibration,
            or a rewrite that lost weights.
    """
    from litecls.export.quiet import converter_output_captured

    with converter_output_captured():
        return _export(model, spec, precision, calibration, float_model)


def _export(model: nn.Module | None, spec: ExportSpec, precision: str,
            calibration: Callable[[], Iterable[np.ndarray]] | None, float_model: bytes | None) -> bytes:
    from litecls.export import quantize
    from litecls.export.convert import convert_float32

    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if float_model is None and model is None:
        raise ExportError("export needs a PyTorch model or an already converted float32 model")
    base = float_model if float_model is not None else convert_float32(model, spec)
    if precision == "float32":
        body = base
    elif precision == "float16":
        body = quantize.quantize_float16(base)
    else:
        if precision == "int8" and calibration is None:
            raise ExportError("int8 export needs calibration images")
        images = list(calibration()) if calibration is not None else []
        if images:  # both quantizers keep int8 weights: round them with GPTQ first
            from litecls.export.gptq import round_weights

            base = round_weights(base, [spec.normalize(image) for image in images]).model
        body = (quantize.quantize_dynamic(base) if precision == "dynamic"
                else quantize.quantize_int8(base, spec, images))
    from litecls.export import flatbuffer

    flat = flatbuffer.write(flatbuffer.read(body))  # inline any offset buffers before re-packing
    flatbuffer.check_roundtrip(body, flat, "inlining buffers")
    result = write_metadata(flat, spec_metadata(spec, precision))
    flatbuffer.check_roundtrip(flat, result, "writing metadata")
    return result


__all__ = ["ExportSpec", "export_tflite", "spec_metadata"]
