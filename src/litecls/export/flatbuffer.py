"""Edits of a .tflite flatbuffer that the converters do not offer.

Every edit reads the model through LiteRT's ``read_model_from_bytearray``,
which copies constant buffers stored *after* the flatbuffer (ai-edge-quantizer's
"offset buffers") back inline. Re-packing without that step silently drops the
weights; :func:`check_roundtrip` guards every rewrite against that.
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

from litecls.errors import ExportError

_NUMPY_TYPE = {schema.TensorType.INT8: np.int8, schema.TensorType.UINT8: np.uint8,
               schema.TensorType.FLOAT32: np.float32}


def read(model: bytes) -> schema.ModelT:
    """Parse a model into LiteRT's mutable object API, with all buffers inline."""
    return flatbuffer_utils.read_model_from_bytearray(bytearray(model))


def write(model: schema.ModelT) -> bytes:
    """Serialise a model object back to bytes."""
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _opcode_index(model: schema.ModelT, builtin: int) -> int:
    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = 2  # QUANTIZE v2 is the int8/uint8 requantize kernel
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _add_tensor(model: schema.ModelT, like: schema.TensorT, name: str, ttype: int,
                scale: float, zero_point: int) -> int:
    graph = model.subgraphs[0]
    buffer = schema.BufferT()
    model.buffers.append(buffer)
    tensor = schema.TensorT()
    tensor.shape = list(like.shape)
    tensor.shapeSignature = list(like.shapeSignature) if like.shapeSignature is not None else None
    tensor.type = ttype
    tensor.buffer = len(model.buffers) - 1
    tensor.name = name
    quant = schema.QuantizationParametersT()
    quant.scale = [float(scale)]
    quant.zeroPoint = [int(zero_point)]
    tensor.quantization = quant
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def _suffixed(name: bytes | str, suffix: bytes) -> bytes:
    return (name.encode() if isinstance(name, str) else name) + suffix


def _requantize_op(model: schema.ModelT, src: int, dst: int) -> schema.OperatorT:
    op = schema.OperatorT()
    op.opcodeIndex = _opcode_index(model, schema.BuiltinOperator.QUANTIZE)
    op.inputs = [src]
    op.outputs = [dst]
    return op


def _retarget_signatures(model: schema.ModelT, old: int, new: int) -> None:
    for signature in model.signatureDefs or []:
        for tensor_map in (signature.inputs or []) + (signature.outputs or []):
            if tensor_map.tensorIndex == old:
                tensor_map.tensorIndex = new


def int8_io_to_uint8(model_bytes: bytes) -> bytes:
    """Give a full-integer int8 model uint8 input and output tensors.

    MediaPipe and the TFLite Task Library accept uint8 (or float32) images
    only. As TensorFlow's converter does for ``inference_input_type=uint8``,
    a QUANTIZE (requantize) op maps uint8 to the int8 the graph computes in,
    with the same scale and the zero point moved by 128, so values are kept
    exactly; another maps the int8 scores back to uint8 on the way out.
    """
    model = read(model_bytes)
    graph = model.subgraphs[0]
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ExportError("expected a model with one input and one output tensor")
    in_idx, out_idx = graph.inputs[0], graph.outputs[0]
    in_t, out_t = graph.tensors[in_idx], graph.tensors[out_idx]
    for tensor in (in_t, out_t):
        if tensor.type != schema.TensorType.INT8:
            raise ExportError(f"tensor {tensor.name!r} is not int8; quantize the model first")
    new_in = _add_tensor(model, in_t, in_t.name, schema.TensorType.UINT8,
                         in_t.quantization.scale[0], in_t.quantization.zeroPoint[0] + 128)
    in_t.name = _suffixed(in_t.name, b"_int8")
    new_out = _add_tensor(model, out_t, out_t.name, schema.TensorType.UINT8,
                          out_t.quantization.scale[0], out_t.quantization.zeroPoint[0] + 128)
    out_t.name = _suffixed(out_t.name, b"_int8")
    graph.operators.insert(0, _requantize_op(model, new_in, in_idx))
    graph.operators.append(_requantize_op(model, out_idx, new_out))
    graph.inputs = [new_in]
    graph.outputs = [new_out]
    _retarget_signatures(model, in_idx, new_in)
    _retarget_signatures(model, out_idx, new_out)
    return write(model)


def constant_bytes(model_bytes: bytes) -> int:
    """Total size of the constant buffers (weights) a model holds, wherever they are stored."""
    model = read(model_bytes)
    return sum(len(b.data) for b in model.buffers if b.data is not None)


def check_roundtrip(before: bytes, after: bytes, what: str) -> None:
    """Fail loudly if a rewrite lost weight data (the offset-buffer pitfall)."""
    lost = constant_bytes(before) - constant_bytes(after)
    if lost > 1024:
        raise ExportError(f"{what} dropped {lost:,} bytes of weights; refusing to write a broken model")


def strip_metadata(model_bytes: bytes) -> bytes:
    """Drop TFLite metadata and packed files (to re-quantize a file that already has them)."""
    model = read(model_bytes)
    keep = []
    for entry in model.metadata or []:
        if entry.name in (b"TFLITE_METADATA", "TFLITE_METADATA"):
            model.buffers[entry.buffer].data = None
        else:
            keep.append(entry)
    model.metadata = keep
    return write(model)
