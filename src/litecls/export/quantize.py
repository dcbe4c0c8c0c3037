"""Post-training quantization of a float32 .tflite with ai-edge-quantizer.

* ``float16``: weights stored as fp16 (dequantized at load), float compute.
* ``dynamic``: int8 per-channel weights, float activations quantized on the fly.
* ``int8``: full-integer, calibrated on representative photos, uint8 in and out.

The int8 recipe departs from the quantizer's defaults in five ways
(global min/max calibration, the input range pinned to pixels 0..255, GPTQ
weights, a float classifier layer, int32-safe biases); docs/decisions.md,
"The int8 recipe", says what each was measured to give.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable

import numpy as np

from litecls.errors import ExportError
from litecls.export import flatbuffer
from litecls.export.spec import ExportSpec

#: Levels either side of zero on the symmetric int8 weight grid the quantizer uses
#: (``scale = max|w| / WEIGHT_LEVELS``); GPTQ rounds onto the same grid.
WEIGHT_LEVELS = 127


def _quantizer(model: bytes):
    from ai_edge_quantizer import quantizer

    return quantizer.Quantizer(bytearray(model))


def quantize_float16(model: bytes) -> bytes:
    """fp16 weights, float32 compute and I/O.

    Args:
        model: a float32 .tflite.

    Returns:
        The quantized .tflite bytes.
    """
    from ai_edge_quantizer import algorithm_manager, qtyping

    q = _quantizer(model)
    q.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                             num_bits=16, algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING)
    return bytes(q.quantize(enable_progress_report=False).quantized_model)


def quantize_dynamic(model: bytes) -> bytes:
    """int8 per-channel weights; activations stay float (quantized on the fly by the kernels)."""
    from ai_edge_quantizer import recipe

    q = _quantizer(model)
    q.load_quantization_recipe(recipe.dynamic_wi8_afp32())
    return bytes(q.quantize(enable_progress_report=False).quantized_model)


def _input_name(model: bytes) -> tuple[str, str, str]:
    """(signature key, input argument name, input tensor name) of a one-input model."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    signature, io = next(iter(interpreter.get_signature_list().items()))
    runner_details = interpreter.get_signature_runner(signature).get_input_details()
    argument = io["inputs"][0]
    return signature, argument, runner_details[argument]["name"]


def quantize_int8(model: bytes, spec: ExportSpec, calibration: Iterable[np.ndarray]) -> bytes:
    """Full-integer int8 with uint8 input/output.

    Args:
        model: a float32 .tflite (weights already GPTQ-rounded, or not).
        spec: the input's normalisation (pins the input range to pixels 0..255).
        calibration: uint8 NHWC batches of one image of the model's size.

    Returns:
        The quantized .tflite bytes.

    Raises:
        ExportError: the quantizer's result does not check out.
    """
    from ai_edge_quantizer import calibrator
    from ai_edge_quantizer.utils import qsv_utils

    signature, argument, tensor_name = _input_name(model)
    samples = [{argument: spec.normalize(image)} for image in calibration]
    if not samples:
        raise ExportError("int8 quantization needs at least one calibration image")
    # Quantizer.calibrate() offers no choice of statistic; the Calibrator does.
    with warnings.catch_warnings():
        # The quantizer keeps every tensor on purpose; LiteRT warns that this is for debugging.
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors", category=UserWarning)
        calib = calibrator.Calibrator(bytearray(model), num_threads=2,
                                      qsv_update_func=qsv_utils.min_max_update)
        calib.calibrate({signature: samples}, _static_quantizer(model)._recipe_manager)
        qsvs = calib.get_model_qsvs()
        low, high = spec.float_input_range()
        shape = np.shape(qsvs[tensor_name]["min"])
        qsvs[tensor_name] = {"min": np.full(shape, low, np.float32), "max": np.full(shape, high, np.float32)}
        model = representable_biases(model, qsvs)
        quantizer = _static_quantizer(model)
        quantized = bytes(quantizer.quantize(qsvs, enable_progress_report=False).quantized_model)
    result = flatbuffer.int8_io_to_uint8(quantized)
    flatbuffer.check_roundtrip(quantized, result, "switching I/O to uint8")
    _check_pixel_input(result, low, high)
    return result


def _static_quantizer(model: bytes):
    """A quantizer of ``model`` with litecls's full-integer recipe."""
    from ai_edge_quantizer import recipe

    q = _quantizer(model)
    q.load_quantization_recipe(recipe.static_wi8_ai8())
    _float_logits(q, model)
    return q


#: int32 bias values kept below this (not 2**31 - 1: float32 rounds that up to 2**31, which the
#: quantizer's cast wraps to -2**31).
_BIAS_LIMIT = 2.0 ** 30


def representable_biases(model: bytes, qsvs: dict) -> bytes:
    """Give every output channel a weight scale at which its bias fits int32.

    A full-integer layer stores bias ``b`` as ``round(b / (s_in * s_w))`` in
    int32, where ``s_in`` is the input's scale and ``s_w = max|w| / 127`` the
    channel's weight scale. A channel whose weights are all but zero (a
    "dead" channel, its BatchNorm scale near 0: EfficientNet-Lite0 has 93) has
    a tiny ``s_w``, so its bias overflows int32. The quantizer clipped it (87,
    118 and 147 biases in EfficientNet-Lite0/1/2, none in MobileNetV2), and its
    cast wrapped the positive ones (4, 3 and 14) to -2**31 ("invalid value
    encountered in cast"): a dead channel's constant output ``act(b)`` became
    0. Raising such a channel's largest weight to the smallest value at which
    the bias fits keeps the bias exact and moves the float output by at most
    that weight times the input range, ``|b| * 127 * 255 / 2**30``: 3e-5 of
    the bias (docs/decisions.md: measured neutral).

    Args:
        model: the float32 .tflite about to be quantized.
        qsvs: the calibrated ranges by tensor name.

    Returns:
        The model with those channels' largest weights raised.
    """
    tree = flatbuffer.read(model)
    graph = tree.subgraphs[0]
    kinds = {flatbuffer.schema.BuiltinOperator.CONV_2D: 0,
             flatbuffer.schema.BuiltinOperator.DEPTHWISE_CONV_2D: 3,
             flatbuffer.schema.BuiltinOperator.FULLY_CONNECTED: 0}
    changed = 0
    for op in graph.operators:
        axis = kinds.get(flatbuffer.builtin(tree, op))
        if axis is None or len(op.inputs) < 3 or op.inputs[2] < 0:
            continue
        tensors = [graph.tensors[i] for i in op.inputs[:3]]
        if any(t.type != flatbuffer.schema.TensorType.FLOAT32 for t in tensors):
            continue
        buffers = [tree.buffers[t.buffer].data for t in tensors[1:]]
        ranges = qsvs.get(flatbuffer.tensor_name(tensors[0]))
        if ranges is None or any(b is None or not len(b) for b in buffers):
            continue
        span = max(float(np.max(ranges["max"])), 0.0) - min(float(np.min(ranges["min"])), 0.0)
        s_in = max(span, 1e-9) / 255  # the quantizer's own floor for an all-zero range
        w = np.moveaxis(np.frombuffer(bytes(buffers[0]), np.float32).reshape(tensors[1].shape), axis, 0)
        bias = np.frombuffer(bytes(buffers[1]), np.float32)
        rows = w.reshape(len(w), -1).copy()
        needed = np.abs(bias) * WEIGHT_LEVELS / (s_in * _BIAS_LIMIT)
        short = np.flatnonzero(np.abs(rows).max(axis=1) < needed)
        if not len(short):
            continue
        for c in short:
            j = int(np.abs(rows[c]).argmax())
            rows[c, j] = needed[c] if rows[c, j] >= 0 else -needed[c]
        fixed = np.moveaxis(rows.reshape(w.shape), 0, axis)
        tree.buffers[tensors[1].buffer].data = np.frombuffer(np.ascontiguousarray(fixed).tobytes(), np.uint8)
        changed += len(short)
    return flatbuffer.write(tree) if changed else model


def _float_logits(q, model: bytes) -> None:
    """Keep the final classifier layer's output (and the softmax) float; see the module notes."""
    from ai_edge_quantizer import algorithm_manager, qtyping

    tail = flatbuffer.classifier_tail(model)
    if tail is None:
        return
    logits, probabilities = (f"^{re.escape(name)};$" for name in tail)  # the quantizer's op "scope"
    q.add_weight_only_config(regex=logits, operation_name=qtyping.TFLOperationName.FULLY_CONNECTED,
                             num_bits=8)
    q.update_quantization_recipe(probabilities, qtyping.TFLOperationName.SOFTMAX,
                                 algorithm_key=algorithm_manager.AlgorithmName.NO_QUANTIZE)


def _check_pixel_input(model: bytes, low: float, high: float) -> None:
    """The uint8 input must mean raw pixels: 0 -> ``low`` and 255 -> ``high``."""
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_content=model).get_input_details()[0]
    scale, zero_point = details["quantization"]
    if details["dtype"] != np.uint8 or not (
            abs((0 - zero_point) * scale - low) < 1e-4 and abs((255 - zero_point) * scale - high) < 1e-4):
        raise ExportError(f"int8 input quantization {scale}, {zero_point} does not map pixels "
                          f"0..255 to {low:.4f}..{high:.4f}")
