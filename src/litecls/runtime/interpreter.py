"""Load a .tflite model into a LiteRT interpreter, with errors that say what is wrong.

LiteRT's own messages for a bad file are generic ("The model is not a valid
Flatbuffer buffer") or, for some inputs, absent. Every check here runs before
or around the interpreter so the caller gets a :class:`ModelFileError` naming
the file and the cause: missing, empty, not TFLite, truncated or corrupt,
cannot allocate, or not an image classifier.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from litecls.errors import ModelFileError, ModelNotFoundError

#: Every TFLite flatbuffer carries this file identifier at byte offset 4.
TFLITE_IDENTIFIER = b"TFL3"

_INPUT_DTYPES = (np.float32, np.uint8, np.int8)
_OUTPUT_DTYPES = (np.float32, np.uint8, np.int8)


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a model: where it is, its shape, type and quantization.

    ``scale == 0`` means the tensor is not quantized (LiteRT reports (0.0, 0)).
    A quantized value ``q`` stands for the real value ``(q - zero_point) * scale``.
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        """True for an integer tensor with quantization parameters."""
        return self.dtype.kind in "ui" and self.scale > 0


@dataclass(frozen=True)
class ImageInputSpec(TensorSpec):
    """The ``[1, height, width, channels]`` image input of a classifier."""

    @property
    def height(self) -> int:
        """Input height in pixels."""
        return self.shape[1]

    @property
    def width(self) -> int:
        """Input width in pixels."""
        return self.shape[2]

    @property
    def channels(self) -> int:
        """1 (greyscale) or 3 (RGB)."""
        return self.shape[3]

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)``, the order :func:`litecls.processing.image.prepare_image` takes."""
        return self.shape[1], self.shape[2]


@dataclass(frozen=True)
class ScoresOutputSpec(TensorSpec):
    """The ``[1, N]`` (or ``[N]``) score output of a classifier."""

    @property
    def num_classes(self) -> int:
        """Number of classes N."""
        return self.shape[-1]


@dataclass(frozen=True)
class ClassifierSignature:
    """The image input and the score outputs (heads) of an image classifier.

    ``output`` is the first head; ``outputs`` all of them, in the model's
    output order (the order of its output metadata).
    """

    input: ImageInputSpec
    output: ScoresOutputSpec
    outputs: tuple[ScoresOutputSpec, ...] = ()

    def __post_init__(self) -> None:
        if not self.outputs:
            object.__setattr__(self, "outputs", (self.output,))


def read_model_bytes(model: str | os.PathLike | bytes) -> tuple[bytes, str]:
    """Return ``(data, name)`` for a model path or bytes, checked by :func:`check_tflite_bytes`.

    ``name`` is the path (or ``"<bytes>"``) for error messages. Raises
    :class:`ModelFileError` for a missing, unreadable, empty or non-TFLite file.
    """
    if isinstance(model, (bytes, bytearray, memoryview)):
        data, name = bytes(model), "<bytes>"
    else:
        path, name = Path(model), str(model)
        if not path.exists():
            raise ModelNotFoundError(f"{name}: no such model file")
        if path.is_dir():
            raise ModelFileError(f"{name}: is a directory, not a .tflite model file")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelFileError(f"{name}: cannot read model file: {exc.strerror or exc}") from None
    check_tflite_bytes(data, name)
    return data, name


def check_tflite_bytes(data: bytes, name: str = "<bytes>") -> None:
    """Raise :class:`ModelFileError` unless ``data`` starts like a TFLite flatbuffer.

    Only the header is checked (cheap); structural damage such as truncation
    is caught when the interpreter verifies the flatbuffer.
    """
    if not data:
        raise ModelFileError(f"{name}: empty model file (0 bytes)")
    if len(data) < 8:
        raise ModelFileError(f"{name}: {len(data)} bytes is too short to be a TFLite model")
    if data[4:8] != TFLITE_IDENTIFIER:
        raise ModelFileError(
            f"{name}: not a TFLite model: expected the identifier {TFLITE_IDENTIFIER.decode()!r} "
            f"at byte 4, found {data[4:8]!r}{_format_hint(data)}")


def _format_hint(data: bytes) -> str:
    """Name a few formats people hand over by mistake, so the fix is obvious."""
    hints = {b"PK\x03\x04": "a zip archive (a Keras or PyTorch checkpoint?)",
             b"\x89HDF": "an HDF5/Keras file",
             b"\x08\x01\x12": "a protobuf (TensorFlow SavedModel or ONNX?)",
             b"\xff\xd8\xff": "a JPEG image", b"\x89PNG": "a PNG image"}
    for magic, what in hints.items():
        if data.startswith(magic):
            return f"; this looks like {what}"
    if data[:64].isascii() and b"\x00" not in data[:64]:
        return "; this looks like a text file"
    return ""


def load_interpreter(model: str | os.PathLike | bytes, num_threads: int | None = None) -> Interpreter:
    """A LiteRT interpreter for ``model`` (path or bytes) with its tensors allocated.

    ``num_threads=None`` keeps LiteRT's default (one thread). XNNPACK is
    applied by LiteRT itself. Raises :class:`ModelFileError` for a missing,
    empty, non-TFLite, truncated or corrupt file and for a model that
    cannot allocate its tensors.
    """
    if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
        raise ValueError(f"num_threads must be a positive integer or None, got {num_threads!r}")
    data, name = read_model_bytes(model)
    return interpreter_from_bytes(data, name, num_threads)


def interpreter_from_bytes(data: bytes, name: str = "<bytes>",
                           num_threads: int | None = None) -> Interpreter:
    """Like :func:`load_interpreter` for bytes already checked by :func:`check_tflite_bytes`."""
    try:
        interpreter = Interpreter(model_content=data, num_threads=num_threads)
    except ValueError as exc:
        # LiteRT's flatbuffer verifier rejects truncated and corrupt files here.
        raise ModelFileError(f"{name}: truncated or corrupt TFLite model ({len(data):,} bytes): "
                             f"{exc}") from None
    except RuntimeError as exc:  # e.g. an operator this LiteRT build does not have
        raise ModelFileError(f"{name}: LiteRT cannot load the model: {exc}") from None
    try:
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        raise ModelFileError(f"{name}: the model loads but its tensors cannot be allocated "
                             f"(unsupported operator or inconsistent shapes?): {exc}") from None
    return interpreter


def _spec(cls: type[TensorSpec], detail: dict) -> TensorSpec:
    scale, zero_point = detail["quantization"]
    return cls(index=int(detail["index"]), name=str(detail["name"]),
               shape=tuple(int(d) for d in detail["shape"]), dtype=np.dtype(detail["dtype"]),
               scale=float(scale), zero_point=int(zero_point))


def describe_classifier(interpreter: Interpreter, name: str = "model") -> ClassifierSignature:
    """Check that ``interpreter`` runs an image classifier and describe its two tensors.

    Expected: exactly one input ``[1, H, W, C]`` with C in (1, 3) of dtype
    float32/uint8/int8, and one or more outputs ``[1, N]`` or ``[N]`` of dtype
    float32/uint8/int8. Anything else raises :class:`ModelFileError` that
    states what was found and what is expected.
    """
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    expected_in = "one image input of shape [1, height, width, 1 or 3] (float32, uint8 or int8)"
    expected_out = "one score output of shape [1, N] or [N] (float32, uint8 or int8), or several (multi-head)"
    if len(inputs) != 1:
        raise ModelFileError(f"{name}: not an image classifier: it has {len(inputs)} inputs, "
                             f"expected {expected_in}")
    if not outputs:
        raise ModelFileError(f"{name}: not an image classifier: it has no outputs, expected {expected_out}")
    inp = _spec(ImageInputSpec, inputs[0])
    shape_ok = len(inp.shape) == 4 and inp.shape[0] == 1 and inp.shape[3] in (1, 3) and min(inp.shape) > 0
    if not shape_ok or inp.dtype not in _INPUT_DTYPES:
        raise ModelFileError(f"{name}: not an image classifier: input is {inp.dtype.name} "
                             f"{list(inp.shape)}, expected {expected_in}")
    if len(inputs[0]["quantization_parameters"]["scales"]) > 1:
        raise ModelFileError(f"{name}: per-channel quantized input is not supported, expected "
                             f"{expected_in} with one scale and zero point")
    heads = []
    for detail in outputs:  # several [1, N] outputs: a multi-head classifier
        out = _spec(ScoresOutputSpec, detail)
        out_ok = (len(out.shape) == 1 or (len(out.shape) == 2 and out.shape[0] == 1)) and out.shape[-1] > 0
        if not out_ok or out.dtype not in _OUTPUT_DTYPES:
            which = "output" if len(outputs) == 1 else f"output {len(heads)}"
            raise ModelFileError(f"{name}: not an image classifier: {which} is {out.dtype.name} "
                                 f"{list(out.shape)}, expected {expected_out}")
        heads.append(out)
    return ClassifierSignature(input=inp, output=heads[0], outputs=tuple(heads))  # type: ignore[arg-type]
