"""Load a .tflite model into a LiteRT interpreter, with errors that say what is wrong.

LiteRT's own messages for a bad file are generic ("The model is not a valid
Flatbuffer buffer") or, for some inputs, absent, and some damaged files crash
the process (a quantization scale of ``inf``, ``nan``, 0 or below kills it with
SIGSEGV inside XNNPACK at ``allocate_tensors``). Every check here runs before
or around the interpreter so the caller gets a :class:`ModelFileError` naming
the file and the cause: missing, empty, not TFLite, checksum mismatch,
truncated or corrupt, impossible quantization, too large, cannot allocate,
fails a trial run, or not an image classifier.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from litecls.errors import ModelFileError, ModelNotFoundError
from litecls.runtime.capture import fds_captured
from litecls.runtime.integrity import sha256_hex, verify_sidecar

_log = logging.getLogger("litecls.runtime")

#: A model whose tensors together would take more than this is refused before allocation
#: (a damaged shape can ask for terabytes). The zoo's largest takes under 100 MB.
MAX_TENSOR_BYTES = 1 << 30

#: Quantization scales outside this range are refused before allocation. Real models stay well
#: inside (the zoo: 8e-12 for int32 biases to 1.0); XNNPACK corrupts its heap ("double free or
#: corruption", SIGABRT) on an activation scale of 3.4e38 and crashes on inf, nan, 0 or negative.
SCALE_RANGE = (1e-20, 1e6)

#: Seconds a model's trial run in a child process may take (see :func:`trial_in_child`).
TRIAL_TIMEOUT_S = 120.0

#: SHA-256 of model bytes that passed a trial run in a child process, or matched the sidecar
#: litecls wrote beside them: not tried again in this process.
_TRUSTED: set[str] = set()

#: LiteRT's native log lines that say nothing to a user; kept for ``--verbose`` (logging INFO).
_CHATTER = re.compile(r"^INFO: (Created TensorFlow Lite .*delegate|Initialized TensorFlow Lite runtime)")

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

    ``name`` is the path (or ``"<bytes>"``) for error messages. A file with a
    ``NAME.sha256`` sidecar (written by litecls's zoo and training exports)
    must match it. Raises :class:`ModelFileError` for a missing, unreadable,
    empty or non-TFLite file and for a checksum mismatch.
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
    if not isinstance(model, (bytes, bytearray, memoryview)) and verify_sidecar(Path(model), data):
        _TRUSTED.add(sha256_hex(data))  # built by litecls, unchanged since
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
    empty, non-TFLite, truncated or corrupt file, a checksum mismatch, and
    a model that fails the checks of :func:`interpreter_from_bytes`.
    """
    if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
        raise ValueError(f"num_threads must be a positive integer or None, got {num_threads!r}")
    data, name = read_model_bytes(model)
    return interpreter_from_bytes(data, name, num_threads)


def interpreter_from_bytes(data: bytes, name: str = "<bytes>",
                           num_threads: int | None = None) -> Interpreter:
    """Like :func:`load_interpreter` for bytes already checked by :func:`check_tflite_bytes`.

    First the model is loaded and run once in a forked child
    (:func:`trial_in_child`), so a model that crashes LiteRT cannot take this
    process with it. Then, before tensors are allocated, every quantization
    scale must be finite and positive (:data:`SCALE_RANGE`), 8-bit zero points
    must fit their type and all tensors together fit :data:`MAX_TENSOR_BYTES`;
    after, one trial :meth:`invoke` on zeros must succeed. LiteRT's native log line
    about the XNNPACK delegate is kept off the terminal (logged at INFO on
    ``litecls.runtime``). Raises :class:`ModelFileError` naming ``name``.
    """
    trial_in_child(data, name)
    with native_stderr_captured():
        try:
            interpreter = Interpreter(model_content=data, num_threads=num_threads)
        except ValueError as exc:
            # LiteRT's flatbuffer verifier rejects truncated and corrupt files here.
            raise ModelFileError(f"{name}: truncated or corrupt TFLite model ({len(data):,} bytes): "
                                 f"{_one_line(exc)}") from None
        except RuntimeError as exc:  # e.g. an operator this LiteRT build does not have
            raise ModelFileError(f"{name}: LiteRT cannot load the model: {_one_line(exc)}") from None
        check_tensors(interpreter, name)
        try:
            interpreter.allocate_tensors()
        except (RuntimeError, ValueError, MemoryError) as exc:
            raise ModelFileError(f"{name}: the model loads but its tensors cannot be allocated (unsupported "
                                 f"operator or inconsistent shapes?): {_one_line(exc)}") from None
        trial_invoke(interpreter, name)
    return interpreter


def trial_in_child(data: bytes, name: str = "<bytes>") -> None:
    """Load and run the model once in a forked child before this process touches it.

    Some damaged models pass every check above and still crash LiteRT in
    native code: the fuzz found a DEQUANTIZE rewired to a larger tensor that
    overflows its output (SIGSEGV). A forked child costs a few milliseconds
    plus one load and two invokes; a crash there is a :class:`ModelFileError`
    here. Files that matched a litecls sidecar, or passed before in this
    process, are not tried again. Skipped where ``os.fork`` is missing or
    unsafe (Windows, macOS) and when ``LITECLS_TRIAL_IN_CHILD=0``.
    """
    if not hasattr(os, "fork") or sys.platform == "darwin" or os.environ.get("LITECLS_TRIAL_IN_CHILD") == "0":
        return
    digest = sha256_hex(data)
    if digest in _TRUSTED:
        return
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stdout.flush()
        sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: quiet, single-threaded, never returns
        code = 0
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            interpreter = Interpreter(model_content=data, num_threads=1)
            check_tensors(interpreter, name)
            interpreter.allocate_tensors()
            trial_invoke(interpreter, name)
            rng = np.random.default_rng(0)
            for detail in interpreter.get_input_details():
                shape, dtype = detail["shape"], np.dtype(detail["dtype"])
                noise = rng.integers(0, 256, shape) if dtype.kind in "ui" else rng.uniform(-1, 1, shape)
                interpreter.set_tensor(detail["index"], noise.astype(dtype))
            interpreter.invoke()
        except BaseException:
            code = 3  # a Python-level error: the checks in this process report it properly
        os._exit(code)
    deadline = time.monotonic() + TRIAL_TIMEOUT_S
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise ModelFileError(f"{name}: a trial run of the model did not finish in {TRIAL_TIMEOUT_S:g} s")
        time.sleep(0.002)
    if os.WIFSIGNALED(status):
        what = signal.Signals(os.WTERMSIG(status)).name
        raise ModelFileError(f"{name}: LiteRT crashes on this model ({what} in a trial run in a child "
                             f"process); the file is damaged or not a model LiteRT can run")
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        _TRUSTED.add(digest)


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (LiteRT's span several, with C++ file names)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(dict.fromkeys(lines)) or type(exc).__name__


def check_tensors(interpreter: Interpreter, name: str = "model") -> None:
    """Refuse impossible quantization and oversized tensors before anything is allocated.

    Every quantization scale must be finite and positive, within
    :data:`SCALE_RANGE` (LiteRT's XNNPACK delegate crashes the process on
    ``inf``, ``nan``, 0 or a negative scale, and corrupts its heap on 3.4e38),
    and the tensors together must fit :data:`MAX_TENSOR_BYTES`. Raises
    :class:`ModelFileError` naming the file and the first bad tensor.
    """
    try:
        details = interpreter.get_tensor_details()
    except (RuntimeError, ValueError) as exc:
        raise ModelFileError(f"{name}: corrupt TFLite model: cannot read its tensors: "
                             f"{_one_line(exc)}") from None
    total = 0
    for detail in details:
        scales = np.asarray(detail.get("quantization_parameters", {}).get("scales", ()), dtype=np.float64)
        low, high = SCALE_RANGE
        with np.errstate(invalid="ignore"):
            bad = scales[~(np.isfinite(scales) & (scales >= low) & (scales <= high))]
        if bad.size:
            tensor = str(detail["name"])
            tensor = tensor if len(tensor) <= 60 else "..." + tensor[-57:]
            raise ModelFileError(
                f"{name}: corrupt quantization: tensor #{detail['index']} ({tensor}) has scale {bad[0]:g}; "
                f"every scale must be finite and positive, between {low:g} and {high:g}")
        zero_points = np.asarray(detail.get("quantization_parameters", {}).get("zero_points", ()))
        dtype = np.dtype(detail["dtype"])
        if zero_points.size and dtype.kind in "ui" and dtype.itemsize == 1:
            info = np.iinfo(dtype)
            outside = zero_points[(zero_points < info.min) | (zero_points > info.max)]
            if outside.size:  # a uint8 output with zero point -1000 crashes LiteRT (SIGSEGV)
                raise ModelFileError(
                    f"{name}: corrupt quantization: tensor #{detail['index']} ({dtype.name}) has zero point "
                    f"{int(outside[0])}, outside {info.min}..{info.max}")
        shape = [max(int(d), 1) for d in detail["shape"]]
        total += int(np.prod(shape, dtype=np.float64)) * np.dtype(detail["dtype"]).itemsize
    if total > MAX_TENSOR_BYTES:
        raise ModelFileError(f"{name}: the model's tensors would take {total / 2**30:,.1f} GiB "
                             f"(limit {MAX_TENSOR_BYTES / 2**30:g} GiB); a damaged shape?")


def trial_invoke(interpreter: Interpreter, name: str = "model") -> list[np.ndarray]:
    """Run the model once on all-zero inputs; return its outputs.

    Raises :class:`ModelFileError` naming the file when LiteRT cannot set the
    inputs, run, or read the outputs (models that allocate but cannot run).
    """
    try:
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        interpreter.invoke()
        return [interpreter.get_tensor(detail["index"]) for detail in interpreter.get_output_details()]
    except (RuntimeError, ValueError, TypeError, MemoryError) as exc:
        raise ModelFileError(f"{name}: the model fails a trial run on a blank input: "
                             f"{_one_line(exc)}") from None


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[None]:
    """Capture what native code writes to file descriptor 2 meanwhile.

    LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
    from C++ when the first interpreter is set up; Python's ``warnings`` and
    ``logging`` never see it and ``TF_CPP_MIN_LOG_LEVEL`` does not silence
    it. Known chatter goes to the ``litecls.runtime`` logger at INFO (shown by
    ``--verbose``); anything else is written to stderr afterwards.
    """
    with fds_captured(2) as lines:
        yield
    other = []
    for line in lines:
        if _CHATTER.match(line):
            _log.info("%s", line)
        else:
            other.append(line)
    if other:
        print("\n".join(other), file=sys.stderr, flush=True)

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


#: How far from 1 the scores of a probe may sum and still count as probabilities.
_PROBABILITY_TOLERANCE = 0.02


def check_scores(interpreter: Interpreter, signature: ClassifierSignature, name: str = "model",
                 labelled: bool = True) -> None:
    """Run two probe images and check that the output can be class scores.

    Any non-finite output (NaN or infinity for a plain input) means corrupt
    weights: refused. A model without labels must also look like a
    classifier: the rule is that an output whose values are all >= 0 on both
    probes (a mid-grey and a seeded noise image) and that does not sum to 1
    (within 0.02, or half a quantization step per class) is neither
    probabilities nor logits (logits go negative) but pooled features after
    a ReLU, as a feature extractor outputs; it is refused with a pointer to
    the image embedder rather than softmaxed into meaningless "classes".
    Passing labels overrides the rule. Raises :class:`ModelFileError`.
    """
    spec, out = signature.input, signature.output
    rng = np.random.default_rng(0)
    if spec.dtype == np.float32:
        probes = [np.zeros(spec.shape, np.float32), rng.uniform(-1, 1, spec.shape).astype(np.float32)]
    else:
        info = np.iinfo(spec.dtype)
        mid = (int(info.min) + int(info.max) + 1) // 2
        probes = [np.full(spec.shape, mid, spec.dtype),
                  rng.integers(info.min, int(info.max) + 1, spec.shape).astype(spec.dtype)]
    outputs = []
    try:
        for probe in probes:
            interpreter.set_tensor(spec.index, probe)
            interpreter.invoke()
            raw = interpreter.get_tensor(out.index).reshape(-1).astype(np.float64)
            outputs.append((raw - out.zero_point) * out.scale if out.quantized else raw)
    except (RuntimeError, ValueError, MemoryError) as exc:
        raise ModelFileError(f"{name}: the model fails a trial run: {_one_line(exc)}") from None
    for values in outputs:
        if not np.all(np.isfinite(values)):
            raise ModelFileError(f"{name}: the model outputs NaN or infinity for a plain image "
                                 f"(corrupt weights?)")
    if labelled:
        return
    tolerance = _PROBABILITY_TOLERANCE + (out.num_classes * out.scale / 2 if out.quantized else 0.0)
    non_negative = all(np.all(v >= 0) for v in outputs)
    probabilities = all(abs(v.sum() - 1.0) <= tolerance for v in outputs)
    if non_negative and not probabilities:
        raise ModelFileError(
            f"{name}: this looks like a feature extractor, not a classifier: its {out.num_classes} "
            f"outputs are all >= 0 but do not sum to 1 (not probabilities), and there are no labels; "
            f"embed images with it instead (litecls.tasks.ImageEmbedder, litecls embed); if it really "
            f"is a classifier, pass its labels")
