"""LiteRT runtime helpers: load a .tflite file into an interpreter and describe its tensors."""

from __future__ import annotations

from litecls.runtime.interpreter import (
    TFLITE_IDENTIFIER,
    ClassifierSignature,
    ImageInputSpec,
    ScoresOutputSpec,
    TensorSpec,
    check_tflite_bytes,
    describe_classifier,
    interpreter_from_bytes,
    load_interpreter,
    read_model_bytes,
)

__all__ = [
    "TFLITE_IDENTIFIER",
    "ClassifierSignature",
    "ImageInputSpec",
    "ScoresOutputSpec",
    "TensorSpec",
    "check_tflite_bytes",
    "describe_classifier",
    "interpreter_from_bytes",
    "load_interpreter",
    "read_model_bytes",
]
