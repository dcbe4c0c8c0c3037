"""Edits of a .tflite flatbuffer that the converters do not offer.

Every edit reads the model through LiteRT's ``read_model_from_bytearray``,
which copies constant buffers stored *after* the flatbuffer (ai-edge-quantizer's
"offset buffers") back inline. Re-packing without that step silently drops the
weights; :func:`check_roundtrip` guards every rewrite against that.
"""

from __future__ import annotations

from ai_edge_litert import schema_py_generated as schema

from litecls.errors import ExportError


def read(model: bytes) -> schema.ModelT:
    """Parse a model into LiteRT's mutable object API, with all buffers inline (ai-edge-litert >= 2.3)."""
    from ai_edge_litert.tools import flatbuffer_utils

    return flatbuffer_utils.read_model_from_bytearray(bytearray(model))


def write(model: schema.ModelT) -> bytes:
    """Serialise a model object back to bytes."""
    from ai_edge_litert.tools import flatbuffer_utils

    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


#: Operator versions LiteRT needs for the tensor types used here: QUANTIZE v2 and
#: DEQUANTIZE v2 cover int8 as well as uint8; SOFTMAX keeps the version it had.
_OP_VERSIONS = {schema.BuiltinOperator.QUANTIZE: 2, schema.BuiltinOperator.DEQUANTIZE: 2}


def _opcode_index(model: schema.ModelT, builtin: int) -> int:
    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            code.version = max(code.version, _OP_VERSIONS.get(builtin, 1))
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = _OP_VERSIONS.get(builtin, 1)
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def builtin(model: schema.ModelT, op: schema.OperatorT) -> int:
    """The BuiltinOperator code of ``op``."""
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def _add_tensor(model: schema.ModelT, like: schema.TensorT, name: bytes | str, ttype: int,
                scale: float | None = None, zero_point: int | None = None) -> int:
    """Append a tensor shaped like ``like``; quantized when ``scale`` is given."""
    graph = model.subgraphs[0]
    buffer = schema.BufferT()
    model.buffers.append(buffer)
    tensor = schema.TensorT()
    tensor.shape = list(like.shape)
    tensor.shapeSignature = list(like.shapeSignature) if like.shapeSignature is not None else None
    tensor.type = ttype
    tensor.buffer = len(model.buffers) - 1
    tensor.name = name
    if scale is not None:
        quant = schema.QuantizationParametersT()
        quant.scale = [float(scale)]
        quant.zeroPoint = [int(zero_point or 0)]
        tensor.quantization = quant
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def _suffixed(name: bytes | str, suffix: bytes) -> bytes:
    return (name.encode() if isinstance(name, str) else name) + suffix


def _op(model: schema.ModelT, builtin: int, src: int, dst: int,
        like: schema.OperatorT | None = None) -> schema.OperatorT:
    """A one-input one-output op; ``like`` lends its options (e.g. SOFTMAX's beta)."""
    op = schema.OperatorT()
    op.opcodeIndex = _opcode_index(model, builtin)
    op.inputs = [src]
    op.outputs = [dst]
    if like is not None:
        op.builtinOptionsType = like.builtinOptionsType
        op.builtinOptions = like.builtinOptions
    return op


def _retarget_signatures(model: schema.ModelT, old: int, new: int) -> None:
    for signature in model.signatureDefs or []:
        for tensor_map in (signature.inputs or []) + (signature.outputs or []):
            if tensor_map.tensorIndex == old:
                tensor_map.tensorIndex = new


def tensor_name(tensor: schema.TensorT) -> str:
    """A tensor's name as ``str``."""
    return tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)


def _producer(graph: schema.SubGraphT, tensor: int) -> schema.OperatorT | None:
    """The op that writes ``tensor``, or ``None`` for inputs and constants."""
    return next((op for op in graph.operators if tensor in list(op.outputs)), None)


def classifier_tail(model_bytes: bytes) -> tuple[str, str] | None:
    """Output tensor names of the final ``FULLY_CONNECTED -> SOFTMAX`` pair, if the model ends so."""
    model = read(model_bytes)
    graph = model.subgraphs[0]
    if len(graph.outputs) != 1:
        return None
    softmax = _producer(graph, graph.outputs[0])
    if softmax is None or builtin(model, softmax) != schema.BuiltinOperator.SOFTMAX:
        return None
    classifier = _producer(graph, softmax.inputs[0])
    if classifier is None or builtin(model, classifier) != schema.BuiltinOperator.FULLY_CONNECTED:
        return None
    return tensor_name(graph.tensors[classifier.outputs[0]]), tensor_name(graph.tensors[softmax.outputs[0]])


def _uint8_output(model: schema.ModelT, graph: schema.SubGraphT,
                  out_idx: int) -> tuple[int, list[schema.OperatorT]]:
    """The uint8 tensor replacing int8 output ``out_idx`` and the ops to append (the three cases of
    :func:`int8_io_to_uint8`)."""
    ops, float32 = schema.BuiltinOperator, schema.TensorType.FLOAT32
    out_t = graph.tensors[out_idx]
    producer = _producer(graph, out_idx)
    consumed = any(out_idx in list(op.inputs) for op in graph.operators)
    source = graph.tensors[producer.inputs[0]] if producer is not None else None
    tail: list[schema.OperatorT] = []
    if (producer is not None and not consumed and builtin(model, producer) == ops.QUANTIZE
            and source is not None and source.type == float32):
        softmax = _producer(graph, producer.inputs[0])
        probabilities = softmax is not None and builtin(model, softmax) == ops.SOFTMAX
        scale, zero_point = ((1 / 256, 0) if probabilities
                             else (out_t.quantization.scale[0], out_t.quantization.zeroPoint[0] + 128))
        new_out = _add_tensor(model, out_t, out_t.name, schema.TensorType.UINT8, scale, zero_point)
        producer.outputs = [new_out]
    elif producer is not None and builtin(model, producer) == ops.SOFTMAX and not consumed:
        new_out = _add_tensor(model, out_t, out_t.name, schema.TensorType.UINT8, 1 / 256, 0)
        logits = graph.tensors[producer.inputs[0]]
        logits_float = _add_tensor(model, logits, _suffixed(logits.name, b"_float"), float32)
        probs_float = _add_tensor(model, out_t, _suffixed(out_t.name, b"_float"), float32)
        graph.operators.remove(producer)
        tail = [_op(model, ops.DEQUANTIZE, producer.inputs[0], logits_float),
                _op(model, ops.SOFTMAX, logits_float, probs_float, like=producer),
                _op(model, ops.QUANTIZE, probs_float, new_out)]
    else:
        new_out = _add_tensor(model, out_t, out_t.name, schema.TensorType.UINT8,
                              out_t.quantization.scale[0], out_t.quantization.zeroPoint[0] + 128)
        scores_float = _add_tensor(model, out_t, _suffixed(out_t.name, b"_float"), float32)
        tail = [_op(model, ops.DEQUANTIZE, out_idx, scores_float),
                _op(model, ops.QUANTIZE, scores_float, new_out)]
    return new_out, tail


def int8_io_to_uint8(model_bytes: bytes) -> bytes:
    """Give a full-integer int8 model uint8 input and output tensors, every op delegable to XNNPACK.

    MediaPipe and the TFLite Task Library accept uint8 (or float32) images
    only; docs/decisions.md ("uint8 input and output") says why not
    TensorFlow's requantize ops. The rewrite:

    * input: uint8 -> DEQUANTIZE -> float32 -> QUANTIZE -> int8. The uint8
      tensor has the int8 one's scale and its zero point + 128, so every
      pixel maps to exactly the int8 value the requantize gave.
    * output, three cases:
      - the quantizer already ends in QUANTIZE from float (a float softmax:
        see :func:`litecls.export.quantize.quantize_int8`, which keeps the
        classifier layer's logits float): that QUANTIZE writes uint8
        directly, probabilities with scale 1/256 and zero point 0;
      - an int8 SOFTMAX at the end becomes DEQUANTIZE (int8 logits) ->
        float32 SOFTMAX -> QUANTIZE to uint8 (scale 1/256, zero point 0);
      - without a final SOFTMAX the int8 scores go through DEQUANTIZE ->
        QUANTIZE to uint8 with their scale and zero point + 128.

    The float tensors hold one image and 1000 scores; the network body stays int8.

    Args:
        model_bytes: a full-integer int8 model with one input and one output.

    Returns:
        The rewritten model's bytes.

    Raises:
        ExportError: not one int8 input and one int8 output.
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
    ops = schema.BuiltinOperator
    float32 = schema.TensorType.FLOAT32

    new_in = _add_tensor(model, in_t, in_t.name, schema.TensorType.UINT8,
                         in_t.quantization.scale[0], in_t.quantization.zeroPoint[0] + 128)
    in_float = _add_tensor(model, in_t, _suffixed(in_t.name, b"_float"), float32)
    in_t.name = _suffixed(in_t.name, b"_int8")
    head = [_op(model, ops.DEQUANTIZE, new_in, in_float), _op(model, ops.QUANTIZE, in_float, in_idx)]

    new_out, tail = _uint8_output(model, graph, out_idx)
    out_t.name = _suffixed(out_t.name, b"_int8")
    graph.operators[:0] = head
    graph.operators.extend(tail)
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
