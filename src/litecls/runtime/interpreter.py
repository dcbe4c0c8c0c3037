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
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from litecls.errors import ModelFileError, ModelNotFoundError
from litecls.runtime.capture import fds_captured
from litecls.runtime.integrity import sha256_hex, verify_sidecar
from litecls.runtime.signature import (  # re-exported: the classifier's tensors, described and checked
    ClassifierSignature,
    ImageInputSpec,
    ScoresOutputSpec,
    TensorSpec,
    check_scores,
    describe_classifier,
    one_line,
)

__all__ = ["TFLITE_IDENTIFIER", "ClassifierSignature", "ImageInputSpec", "ScoresOutputSpec", "TensorSpec",
           "check_scores", "check_tensors", "check_tflite_bytes", "describe_classifier",
           "interpreter_from_bytes", "load_interpreter", "native_stderr_captured", "read_model_bytes",
           "trial_in_child", "trial_invoke"]

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

def read_model_bytes(model: str | os.PathLike | bytes) -> tuple[bytes, str]:
    """Return ``(data, name)`` for a model path or bytes, checked by :func:`check_tflite_bytes`.

    A file with a ``NAME.sha256`` sidecar (written by litecls's zoo and
    training exports) must match it.

    Args:
        model: a .tflite path or its bytes.

    Returns:
        The bytes, and the path (or ``"<bytes>"``) for error messages.

    Raises:
        ModelNotFoundError: no such file.
        ModelFileError: a folder, an unreadable, empty or non-TFLite file, or a checksum mismatch.
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
    """Check that ``data`` starts like a TFLite flatbuffer.

    Only the header is checked (cheap); structural damage such as truncation
    is caught when the interpreter verifies the flatbuffer.

    Args:
        data: the model's bytes.
        name: the model's name for messages.

    Raises:
        ModelFileError: empty, too short, or without the TFLite identifier.
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

    XNNPACK is applied by LiteRT itself.

    Args:
        model: a .tflite path or its bytes.
        num_threads: interpreter threads; ``None`` keeps LiteRT's default (one).

    Returns:
        The interpreter, ready to run.

    Raises:
        ValueError: ``num_threads`` is not a positive integer.
        ModelFileError: a missing, empty, non-TFLite, truncated or corrupt file,
            a checksum mismatch, or a model that fails the checks of
            :func:`interpreter_from_bytes`.
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
    ``litecls.runtime``).

    Args:
        data: the model's bytes.
        name: the model's name for messages.
        num_threads: interpreter threads (default: LiteRT's).

    Returns:
        The interpreter, tensors allocated.

    Raises:
        ModelFileError: the model is truncated or corrupt, cannot be loaded or
            allocated, or fails a check or the trial run (naming ``name``).
    """
    trial_in_child(data, name)
    with native_stderr_captured():
        try:
            interpreter = Interpreter(model_content=data, num_threads=num_threads)
        except ValueError as exc:
            # LiteRT's flatbuffer verifier rejects truncated and corrupt files here.
            raise ModelFileError(f"{name}: truncated or corrupt TFLite model ({len(data):,} bytes): "
                                 f"{one_line(exc)}") from None
        except RuntimeError as exc:  # e.g. an operator this LiteRT build does not have
            raise ModelFileError(f"{name}: LiteRT cannot load the model: {one_line(exc)}") from None
        check_tensors(interpreter, name)
        try:
            interpreter.allocate_tensors()
        except (RuntimeError, ValueError, MemoryError) as exc:
            raise ModelFileError(f"{name}: the model loads but its tensors cannot be allocated (unsupported "
                                 f"operator or inconsistent shapes?): {one_line(exc)}") from None
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
                             f"{one_line(exc)}") from None
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


def resize_input(interpreter: Interpreter, index: int, shape: tuple[int, ...]) -> bool:
    """Resize input ``index`` to ``shape`` and re-plan the graph, if the model allows it.

    A model whose graph fixes the batch at one (Google's published int8 EfficientNet-Lite0,
    for one) makes LiteRT's planner fail on any other batch; the input is then put back to its
    former shape, re-planned, and still works as before.

    Args:
        interpreter: a LiteRT interpreter (its tensors allocated).
        index: the input tensor's index.
        shape: the new shape.

    Returns:
        True when the input now has ``shape``; False when the model cannot take it.
    """
    former = next([int(d) for d in detail["shape"]] for detail in interpreter.get_input_details()
                  if detail["index"] == index)
    try:
        interpreter.resize_tensor_input(index, list(shape))
        interpreter.allocate_tensors()
        return True
    except (RuntimeError, ValueError):
        interpreter.resize_tensor_input(index, former)
        interpreter.allocate_tensors()
        return False


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
                             f"{one_line(exc)}") from None


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
