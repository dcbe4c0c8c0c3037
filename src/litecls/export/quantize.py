"""Post-training quantization of a float32 .tflite with ai-edge-quantizer.

* ``float16``: weights stored as fp16 (dequantized at load), float compute.
* ``dynamic``: int8 per-channel weights, float activations quantized on the fly.
* ``int8``: full-integer, calibrated on representative photos, uint8 in and out.

Four choices differ from the quantizer's defaults, all measured:

* Calibration keeps the global min/max over the whole representative set.
  The default moving average of per-batch min/max clips activations; it cost
  MobileNetV2 5 of 16 correct top-1 answers on real photos.
* The input range is pinned to what pixels 0..255 normalise to, so a uint8
  input value *is* the raw pixel (as MediaPipe and Android apps feed it); the
  calibrated range would be narrower and clip bright or dark pixels.
* Weights reach ``dynamic`` and ``int8`` already rounded with GPTQ
  (:mod:`litecls.export.gptq`, run by :func:`litecls.export.export_tflite` on
  the calibration images): rounding each weight to its nearest level let
  errors add up; GPTQ raised int8-vs-float32 agreement
  by 2-4.5 points on every zoo model (and ``dynamic``'s by 2.6-4.2).
* The classifier layer (the final FULLY_CONNECTED before the softmax) keeps
  int8 weights but computes in float (weight-only: the weights are
  dequantized once at load), so the logits are not int8. Real photos give
  logits well beyond what calibration photos give (MobileNetV2: up to 29.9
  against a calibrated 19.8); int8 logits clipped there, and 3 of 58 photos
  came out with two or three classes tied at the top. The layer is 0.3-0.4 % of
  the network's MACs and still runs in XNNPACK.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable

import numpy as np

from litecls.errors import ExportError
from litecls.export import flatbuffer
from litecls.export.spec import ExportSpec

PRECISIONS = ("float32", "float16", "dynamic", "int8")


def _quantizer(model: bytes):
    from ai_edge_quantizer import quantizer

    return quantizer.Quantizer(bytearray(model))


def quantize_float16(model: bytes) -> bytes:
    """fp16 weights, float32 compute and I/O."""
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

    ``calibration`` yields uint8 NHWC batches of one image of the model's size.
    """
    from ai_edge_quantizer import calibrator, recipe
    from ai_edge_quantizer.utils import qsv_utils

    signature, argument, tensor_name = _input_name(model)
    samples = [{argument: spec.normalize(image)} for image in calibration]
    if not samples:
        raise ExportError("int8 quantization needs at least one calibration image")
    q = _quantizer(model)
    q.load_quantization_recipe(recipe.static_wi8_ai8())
    _float_logits(q, model)
    # Quantizer.calibrate() offers no choice of statistic; the Calibrator does.
    with warnings.catch_warnings():
        # The quantizer keeps every tensor on purpose; LiteRT warns that this is for debugging.
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors", category=UserWarning)
        calib = calibrator.Calibrator(bytearray(model), num_threads=2,
                                      qsv_update_func=qsv_utils.min_max_update)
        calib.calibrate({signature: samples}, q._recipe_manager)
        qsvs = calib.get_model_qsvs()
        low, high = spec.float_input_range()
        shape = np.shape(qsvs[tensor_name]["min"])
        qsvs[tensor_name] = {"min": np.full(shape, low, np.float32), "max": np.full(shape, high, np.float32)}
        quantized = bytes(q.quantize(qsvs, enable_progress_report=False).quantized_model)
    result = flatbuffer.int8_io_to_uint8(quantized)
    flatbuffer.check_roundtrip(quantized, result, "switching I/O to uint8")
    _check_pixel_input(result, low, high)
    return result


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
